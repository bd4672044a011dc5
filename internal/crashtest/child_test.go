package crashtest

// Running the service as a child process: build it, start it with its
// configuration in the environment, wait until it is ready, kill it.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/internal/proctest"
)

// buildCatalog builds cmd/catalog into a temporary directory and returns
// the binary's path. The module root is found with `go env GOMOD`; go test
// puts the go command that runs it first on PATH.
func buildCatalog(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build cmd/catalog: %v", err)
	}
	out, err := exec.Command(goCmd, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD: not inside a module (%q)", gomod)
	}
	bin := filepath.Join(t.TempDir(), "catalog")
	start := time.Now()
	cmd := exec.Command(goCmd, "build", "-o", bin, "./cmd/catalog")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/catalog: %v\n%s", err, out)
	}
	t.Logf("built cmd/catalog in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// deployment is one logical service: a binary, a broker, a service name
// and a data directory, run by one child process at a time.
type deployment struct {
	t       *testing.T
	bin     string
	brokers string // comma-separated
	service string
	dataDir string
	logDir  string
	started int
	// partitions is the children's PARTITIONS; 0 means the const
	// partitions.
	partitions int32
	// logLevel is the children's LOG_LEVEL when TEST_LOG_LEVEL is not
	// set; "" means warn.
	logLevel string
	// lanes is the children's STAGE_LANES; 0 means the service's default.
	lanes int
}

// partitionCount is the children's PARTITIONS.
func (d *deployment) partitionCount() int32 {
	if d.partitions > 0 {
		return d.partitions
	}
	return partitions
}

// child is a running (or finished) service process.
type child struct {
	name   string
	url    string // http://127.0.0.1:port
	cmd    *exec.Cmd
	stderr string // path of the file holding its stdout and stderr
	done   chan struct{}
	err    error // cmd.Wait's result, once done is closed
}

// start starts a service process on the deployment's data directory and
// broker, listening on a free port of 127.0.0.1. It is killed when the test
// ends; its output is printed if the test failed (or with -v).
func (d *deployment) start() *child {
	d.t.Helper()
	d.started++
	name := fmt.Sprintf("instance-%d", d.started)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(proctest.FreePort(d.t)))
	return d.launch(name, d.dataDir, addr)
}

// launch starts a service process called name (which names its log file
// too) on dataDir and the deployment's broker, listening on addr (a
// host:port of 127.0.0.1) and advertising http://addr. It is killed when
// the test ends; its output is printed if the test failed (or with -v).
func (d *deployment) launch(name, dataDir, addr string) *child {
	t := d.t
	t.Helper()
	logPath := filepath.Join(d.logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(d.bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"KAFKA_BROKERS=" + d.brokers,
		"HTTP_ADDR=" + addr,
		"ADVERTISED_URL=http://" + addr,
		"DATA_DIR=" + dataDir,
		"SERVICE_NAME=" + d.service,
		"PARTITIONS=" + strconv.Itoa(int(d.partitionCount())),
		"LOG_LEVEL=" + d.childLogLevel(),
	}
	if d.lanes > 0 {
		cmd.Env = append(cmd.Env, "STAGE_LANES="+strconv.Itoa(d.lanes))
	}
	if v := os.Getenv("STAGE_OVERLAP"); v != "" {
		// The suite runs again with one transaction at a time.
		cmd.Env = append(cmd.Env, "STAGE_OVERLAP="+v)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", d.bin, err)
	}
	c := &child{name: name, url: "http://" + addr, cmd: cmd, stderr: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.kill(t)
		if t.Failed() || testing.Verbose() {
			t.Logf("output of %s (pid %d, %s):\n%s", c.name, cmd.Process.Pid, c.exitStatus(), proctest.Tail(c.stderr, 64<<10))
		}
	})
	return c
}

// kill sends SIGKILL (if the process still runs) and waits for it to exit.
func (c *child) kill(t *testing.T) {
	select {
	case <-c.done:
		return
	default:
	}
	if err := c.cmd.Process.Kill(); err != nil {
		t.Logf("kill %s: %v", c.name, err)
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s (pid %d) did not exit within 10s of SIGKILL", c.name, c.cmd.Process.Pid)
	}
}

// stop sends SIGTERM (a graceful stop) and waits up to timeout for the
// process to exit; it returns how long that took and the exit error (nil:
// status 0). Past the timeout the test fails and the process is killed.
func (c *child) stop(t *testing.T, timeout time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	select {
	case <-c.done:
		return 0, c.err
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Logf("SIGTERM %s: %v", c.name, err)
	}
	select {
	case <-c.done:
		return time.Since(start), c.err
	case <-time.After(timeout):
		t.Errorf("%s (pid %d) did not exit within %v of SIGTERM; killing it", c.name, c.cmd.Process.Pid, timeout)
		c.kill(t)
		return time.Since(start), c.err
	}
}

func (c *child) exitStatus() string {
	select {
	case <-c.done:
		if c.err == nil {
			return "exited with status 0"
		}
		return c.err.Error()
	default:
		return "running"
	}
}

// waitReady polls GET /readyz until it answers 200, and returns how long
// that took. It fails the test if the process exits or timeout passes.
func (c *child) waitReady(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	last := "no answer"
	for time.Since(start) < timeout {
		select {
		case <-c.done:
			t.Fatalf("%s exited before it was ready (%s)", c.name, c.exitStatus())
		default:
		}
		resp, err := hc.Get(c.url + "/readyz")
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
	t.Fatalf("%s not ready within %v (last answer of /readyz: %s)", c.name, timeout, last)
	return 0
}

// childLogLevel is the children's LOG_LEVEL: TEST_LOG_LEVEL when set (as
// for the in-process services of internal/service's tests), else the
// deployment's, else warn.
func (d *deployment) childLogLevel() string {
	if v := os.Getenv("TEST_LOG_LEVEL"); v != "" {
		return v
	}
	if d.logLevel != "" {
		return d.logLevel
	}
	return "warn"
}
