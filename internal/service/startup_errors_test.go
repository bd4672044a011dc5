package service_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/internal/service"
)

// TestStartOverTheWrongProtocolNamesTheSettings: KAFKA_TLS=true against a
// plain-text listener is a client that never gets an answer, which it
// reports only as time running out ("unable to dial: context deadline
// exceeded"). The service's refusal to start names the settings to check
// and the protocol it spoke.
func TestStartOverTheWrongProtocolNamesTheSettings(t *testing.T) {
	h := newHarness(t)
	cfg := h.config(h.DataDir)
	cfg.Kafka.TLS.Enabled = true // the brokers of the tests speak plain text
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg.AdvertisedURL = "http://" + ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	svc, err := service.New(ctx, cfg, service.Options{Listener: ln, ClientOpts: h.ClientOpts})
	if err == nil {
		sctx, scancel := context.WithCancel(context.Background())
		scancel()
		_ = svc.Run(sctx)
		t.Fatal("the service started speaking TLS to a plain-text broker")
	}
	for _, want := range []string{"KAFKA_TLS", "KAFKA_BROKERS", "over SSL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start-up error does not say %q:\n%v", want, err)
		}
	}
}
