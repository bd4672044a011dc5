package httpapi

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/bookscatalog/catalog/settingfile"
)

// TLSConfig returns the TLS configuration of an HTTPS listener serving the
// certificate (chain) and key of two PEM files (TLS_CERT_FILE,
// TLS_KEY_FILE): TLS 1.2 at least, HTTP/2 offered. The files are read
// again when they change (checked at most once a minute, on a handshake),
// so a renewed certificate is served without a restart; a renewal that
// does not load keeps the certificate in force, with an error logged.
func TLSConfig(certFile, keyFile string, log *slog.Logger) (*tls.Config, error) {
	if log == nil {
		log = slog.Default()
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, every: time.Minute, now: time.Now}
	if err := r.load(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: r.get,
	}, nil
}

// certReloader holds the served certificate and loads it again when its
// files change.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	every             time.Duration
	now               func() time.Time

	mu       sync.Mutex
	cert     *tls.Certificate
	modTimes [2]time.Time
	checked  time.Time
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= r.every {
		r.checked = now
		if mt, err := r.stat(); err == nil && mt != r.modTimes {
			if err := r.loadLocked(); err != nil {
				r.log.Error("TLS certificate changed but does not load: serving the one loaded before", "err", err)
			} else {
				r.log.Info("TLS certificate loaded again", "cert", r.certFile)
			}
		}
	}
	return r.cert, nil
}

func (r *certReloader) stat() ([2]time.Time, error) {
	var mt [2]time.Time
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return mt, err
		}
		mt[i] = fi.ModTime()
	}
	return mt, nil
}

func (r *certReloader) load() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked = r.now()
	return r.loadLocked()
}

func (r *certReloader) loadLocked() error {
	mt, err := r.stat()
	if err != nil {
		return fmt.Errorf("TLS_CERT_FILE, TLS_KEY_FILE: %w", err)
	}
	// Read as settings are (settingfile): a FIFO in their place would
	// block the start, or every reload, for good.
	certPEM, err := settingfile.Read("TLS_CERT_FILE", r.certFile)
	if err != nil {
		return err
	}
	keyPEM, err := settingfile.Read("TLS_KEY_FILE", r.keyFile)
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("TLS_CERT_FILE %s, TLS_KEY_FILE %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.modTimes = &cert, mt
	return nil
}
