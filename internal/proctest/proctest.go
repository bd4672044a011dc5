// Package proctest helps the tests that run the service as child
// processes (the crash and chaos tests): free ports for them, and the end
// of their logs when one fails.
package proctest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
)

// handedOut holds the ports FreePort returned in this test process. The
// kernel may give the same free port to two listens in a row once the
// first is closed (two instances of a crash test were given one HTTP
// port), and a port handed out is only bound later, by a child process:
// the one piece of process-wide state a test helper needs.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago and
// that no earlier call in this process returned.
func FreePort(t testing.TB) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
	t.Fatal("no free port that was not handed out already")
	return 0
}

// Tail returns the last max bytes of the file at path, from a line start.
func Tail(path string, max int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
		return "[... earlier output cut ...]\n" + string(b)
	}
	if len(b) == 0 {
		return "(no output)"
	}
	return string(b)
}
