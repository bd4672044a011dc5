package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// One client long-polling (or trickling bodies) could hold every request
// slot (MaxRequests): every other client then got 503 and writes stopped
// for everyone. Now one client, told apart by its address (an IPv6 one by
// its /64), holds at most MaxRequestsPerClient of them (429 beyond), and
// other clients are served.
func TestOneClientCannotTakeEveryRequestSlot(t *testing.T) {
	release := make(chan struct{})
	var started, done sync.WaitGroup
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			started.Done()
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	})
	self, peer := &Peers{Self: "http://b:9081", Secret: testSecret}, &Peers{Self: "http://a:9081", Secret: testSecret}
	srv := NewServer(h, ServerConfig{MaxRequests: 10, MaxRequestsPerClient: 3, Peers: self})
	send := func(r *http.Request, addr string) int {
		r.RemoteAddr = addr
		rec := httptest.NewRecorder()
		srv.Handler.ServeHTTP(rec, r)
		return rec.Code
	}
	serve := func(path, addr string) int { return send(httptest.NewRequest(http.MethodGet, path, nil), addr) }
	hold := func(addr string) {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			if code := serve("/hold", addr); code != http.StatusNoContent {
				t.Errorf("held request from %s: %d", addr, code)
			}
		}()
	}
	for i := range 3 {
		hold(fmt.Sprintf("192.0.2.1:%d", 1000+i))
		hold(fmt.Sprintf("[2001:db8::%d]:80", i+1))
	}
	started.Wait()
	for _, c := range []struct {
		addr string
		want int
	}{
		{"192.0.2.1:4000", http.StatusTooManyRequests},
		{"[2001:db8::ff]:443", http.StatusTooManyRequests}, // the same /64
		{"198.51.100.7:5000", http.StatusNoContent},
		{"[2001:db8:0:1::1]:80", http.StatusNoContent},
	} {
		if code := serve("/", c.addr); code != c.want {
			t.Errorf("request from %s: %d, want %d", c.addr, code, c.want)
		}
	}
	// A request another instance forwards is counted where its client
	// arrived, not against the instance's address; a forged one is not
	// forwarded.
	fwd := httptest.NewRequest(http.MethodGet, "http://b:9081/", nil)
	peer.prepare(fwd, self.Self)
	if code := send(fwd, "192.0.2.1:4001"); code != http.StatusNoContent {
		t.Errorf("a request forwarded by a peer at the client's address: %d, want 204", code)
	}
	forged := httptest.NewRequest(http.MethodGet, "http://b:9081/", nil)
	forged.Header.Set(ForwardedHeader, peer.Self)
	if code := send(forged, "192.0.2.1:4002"); code != http.StatusTooManyRequests {
		t.Errorf("a request claiming to be forwarded, without proof: %d, want 429", code)
	}
	close(release)
	done.Wait()
	if code := serve("/", "192.0.2.1:4000"); code != http.StatusNoContent {
		t.Errorf("the first client once its requests ended: %d, want 204", code)
	}
}
