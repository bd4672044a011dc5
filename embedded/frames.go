package embedded

import (
	"encoding/binary"
	"fmt"
	"net"
)

// maxRequestBytes bounds a request a client may send the broker, as Apache
// Kafka's socket.request.max.bytes does (its default). kfake has no such
// bound: it allocates the size a request's first four bytes announce
// before it reads a byte more, or asks who the client is.
const maxRequestBytes = 100 << 20

// boundedListener accepts connections that end when a request announces
// more than maxRequestBytes. Anything that speaks another protocol to the
// broker is such a request: an HTTP request's method announces more than
// a gigabyte, and any web page can make a browser send one (a no-cors
// POST to 127.0.0.1:9092) with a body to fill it.
type boundedListener struct{ net.Listener }

func (l boundedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &boundedConn{Conn: c}, nil
}

// boundedConn follows the requests a client sends, each a four-byte size
// then that many bytes, and ends the connection at a size over
// maxRequestBytes before the broker sees it.
type boundedConn struct {
	net.Conn
	size  [4]byte
	nsize int   // bytes of the next size read so far
	left  int64 // bytes of the current request still to come
}

func (c *boundedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for i := 0; i < n; {
		if c.left > 0 {
			skip := min(c.left, int64(n-i))
			c.left -= skip
			i += int(skip)
			continue
		}
		c.size[c.nsize] = p[i]
		c.nsize++
		i++
		if c.nsize < len(c.size) {
			continue
		}
		c.nsize = 0
		size := binary.BigEndian.Uint32(c.size[:])
		if size > maxRequestBytes {
			_ = c.Conn.Close()
			return 0, fmt.Errorf("embedded broker: a request of %d bytes from %s, over %d: not Kafka, or not a client of this broker; connection closed", size, c.RemoteAddr(), maxRequestBytes)
		}
		c.left = int64(size)
	}
	return n, err
}
