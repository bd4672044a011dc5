package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// signalHelperEnv makes the test binary, run again by
// TestSecondSignalStopsAtOnce, act as a process whose graceful shutdown
// hangs.
const signalHelperEnv = "CATALOG_TEST_SIGNAL_HELPER"

// TestSecondSignalStopsAtOnce: the first SIGINT asks for a graceful stop;
// should that stop hang (a broker that does not answer), the operator's
// second SIGINT must end the process, not be swallowed.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	if os.Getenv(signalHelperEnv) == "1" {
		ctx, stop := signalContext()
		defer stop()
		fmt.Println("ready")
		<-ctx.Done()
		fmt.Println("stopping")
		select {} // a graceful stop that never ends
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondSignalStopsAtOnce$")
	cmd.Env = append(os.Environ(), signalHelperEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := bufio.NewScanner(out)
	expect := func(want string) {
		t.Helper()
		for lines.Scan() {
			if lines.Text() == want {
				return
			}
		}
		_ = cmd.Process.Kill()
		t.Fatalf("the helper ended before saying %q", want)
	}
	expect("ready")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	expect("stopping")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	go func() {
		for lines.Scan() {
		}
		exited <- cmd.Wait()
	}()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("helper exit: %v; want killed by SIGINT", err)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
			t.Errorf("helper exit: %v; want killed by SIGINT", err)
		}
	case <-time.After(30 * time.Second): // a hang guard
		_ = cmd.Process.Kill()
		<-exited
		t.Fatal("a second SIGINT did not end a process whose graceful stop hangs")
	}
}
