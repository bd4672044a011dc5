package chaostest

// The service's instances as child processes: built once, started on their
// own data directory and address, killed (SIGKILL), frozen (SIGSTOP) and
// thawed (SIGCONT), started again.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/internal/proctest"
)

// moduleRoot returns the directory of the module's go.mod; go test puts the
// go command that runs it first on PATH.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD: not inside a module (%q)", gomod)
	}
	return filepath.Dir(gomod)
}

// buildCatalog builds cmd/catalog into a temporary directory and returns
// the binary's path.
func buildCatalog(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "catalog")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/catalog")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/catalog: %v\n%s", err, out)
	}
	t.Logf("built cmd/catalog in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// instance is one instance of the service: its data directory and address
// stay across the processes that run it.
type instance struct {
	name    string
	bin     string
	env     []string // the configuration, shared by every instance
	dataDir string
	addr    string // 127.0.0.1:port
	url     string
	logDir  string

	mu   sync.Mutex
	runs int
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
	err  error         // its exit status, once done is closed
}

// newInstance returns an instance called name, with its data directory
// under dir and a free port of 127.0.0.1; its process is killed when the
// test ends, and the output of each of its runs printed if the test failed.
func newInstance(t *testing.T, name, bin, dir string, env []string) *instance {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(proctest.FreePort(t)))
	in := &instance{name: name, bin: bin, env: env, dataDir: filepath.Join(dir, name), addr: addr, url: "http://" + addr, logDir: dir}
	t.Cleanup(func() {
		in.kill(t)
		if t.Failed() {
			for r := 1; r <= in.runs; r++ {
				t.Logf("output of %s, run %d:\n%s", in.name, r, proctest.Tail(in.logPath(r), 48<<10))
			}
		}
	})
	return in
}

func (in *instance) logPath(run int) string {
	return filepath.Join(in.logDir, fmt.Sprintf("%s-run%d.log", in.name, run))
}

// start starts a process for the instance; its output goes to a log file
// per run.
func (in *instance) start(t *testing.T) {
	t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.runs++
	f, err := os.Create(in.logPath(in.runs))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(in.bin)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HTTP_ADDR=" + in.addr,
		"ADVERTISED_URL=" + in.url,
		"DATA_DIR=" + in.dataDir,
		"GOTRACEBACK=all", // dumpGoroutines
		// The test runs again with overlapping transactions.
		"STAGE_OVERLAP=" + os.Getenv("STAGE_OVERLAP"),
	}, in.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", in.name, err)
	}
	done := make(chan struct{})
	in.cmd, in.done = cmd, done
	go func() {
		err := cmd.Wait()
		f.Close()
		in.mu.Lock()
		in.err = err
		in.mu.Unlock()
		close(done)
	}()
}

// running reports whether the current process has not exited.
func (in *instance) running() bool {
	in.mu.Lock()
	done := in.done
	in.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// exitStatus describes how the current process ended, or "running".
func (in *instance) exitStatus() string {
	if in.running() {
		return "running"
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.err == nil {
		return "exited with status 0"
	}
	return in.err.Error()
}

// signal sends sig to the current process.
func (in *instance) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	in.mu.Lock()
	cmd := in.cmd
	in.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%v to %s: %v", sig, in.name, err)
	}
}

// dumpGoroutines ends the current process with SIGQUIT, which makes the Go
// runtime print every goroutine's stack, and logs the stacks that pass
// through the module's own code.
func (in *instance) dumpGoroutines(t *testing.T) {
	t.Helper()
	in.mu.Lock()
	cmd, done, run := in.cmd, in.done, in.runs
	in.mu.Unlock()
	if cmd == nil || !in.running() {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	if err := cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Logf("SIGQUIT to %s: %v", in.name, err)
		return
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Logf("%s did not exit within 10s of SIGQUIT", in.name)
		return
	}
	b, err := os.ReadFile(in.logPath(run))
	if err != nil {
		t.Logf("goroutines of %s: %v", in.name, err)
		return
	}
	dump := string(b)
	if i := strings.LastIndex(dump, "SIGQUIT: quit"); i >= 0 {
		dump = dump[i:]
	}
	var ours []string
	for _, g := range strings.Split(dump, "\n\n") {
		if strings.Contains(g, "bookscatalog/catalog/") {
			ours = append(ours, g)
		}
	}
	t.Logf("goroutines of %s (run %d) in the module's code, at SIGQUIT:\n%s", in.name, run, strings.Join(ours, "\n\n"))
}

// kill sends SIGKILL (SIGCONT first: a frozen process is killed too) and
// waits for the process to exit.
func (in *instance) kill(t *testing.T) {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	if err := cmd.Process.Kill(); err != nil {
		t.Logf("kill %s: %v", in.name, err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s (pid %d) did not exit within 10s of SIGKILL", in.name, cmd.Process.Pid)
	}
}

// waitReady polls GET /readyz until it answers 200 and returns how long
// that took; past timeout, or if the process exits, the test fails.
func (in *instance) waitReady(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	last := "no answer"
	for time.Since(start) < timeout {
		if !in.running() {
			t.Fatalf("%s exited before it was ready (%s)", in.name, in.exitStatus())
		}
		resp, err := hc.Get(in.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready within %v (last answer of /readyz: %s)", in.name, timeout, last)
	return 0
}

// instanceID returns the instance id the service keeps in its data
// directory: the transactional ids of its stages end with it.
func (in *instance) instanceID(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(in.dataDir, "instance-id"))
	if err != nil {
		t.Fatalf("instance id of %s: %v", in.name, err)
	}
	return strings.TrimSpace(string(b))
}
