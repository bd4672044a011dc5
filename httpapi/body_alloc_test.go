package httpapi

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"
)

// A client that announces a body of MaxBodyBytes and sends a few bytes of
// it costs the server what it sent, not the body it announced: reading
// held a buffer of the announced size for each such request until the
// ReadTimeout, so HTTP_MAX_CONNS connections of headers alone (some 100
// bytes each) held HTTP_MAX_CONNS MiB.
func TestAnnouncedBodyIsNotAllocatedAhead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(New(testConfig()), ServerConfig{})
	go srv.Serve(ln)
	defer srv.Close()

	const conns = 40
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		fmt.Fprintf(c, "POST /people HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"id\":", MaxBodyBytes)
	}
	// Let the handlers reach the body and wait in it.
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if grown > conns*MaxBodyBytes/4 {
		t.Fatalf("%d requests that sent 6 bytes of their bodies hold %d MiB of heap (%d KiB each)", conns, grown>>20, grown/conns>>10)
	}
	t.Logf("%d requests hold %d KiB of heap", conns, grown>>10)
}
