// Package proctest helps the tests that run the service as child
// processes (the crash and chaos tests): free ports for them, and the end
// of their logs when one fails.
package proctest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"testing"
)

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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
