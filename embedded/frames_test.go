package embedded

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// kfake allocates a request's buffer at the size its first four bytes
// announce, before any authentication: "POST" announces 1.3 GB. Any web
// page a developer visits could send a no-cors POST to the default
// 127.0.0.1:9092 and make the service (the broker runs in its process)
// hold gigabytes, filled by the request's body. A request larger than
// Apache Kafka's socket.request.max.bytes ends the connection. Found by
// review; the test failed before.
func TestOversizedRequestEndsTheConnection(t *testing.T) {
	b, err := Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST / HTTP/1.1\r\nHost: 127.0.0.1:9092\r\nContent-Type: text/plain\r\nContent-Length: 1400000000\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the broker waits for the 1.3 GB its buffer was made for: an HTTP request to it was taken as a Kafka request of that size")
	}
	// And a client that speaks Kafka still gets in.
	if !canConnect(t, b, b.Client()) {
		t.Fatal("the broker's own client was refused")
	}
}
