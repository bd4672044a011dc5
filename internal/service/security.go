package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/bookscatalog/catalog/auth"
	"github.com/bookscatalog/catalog/httpapi"
	"github.com/bookscatalog/catalog/settingfile"
)

// This file wires the HTTP side of docs/security.md: who may call the API
// (AUTH_*), HTTPS (TLS_*), the operator listener (ADMIN_ADDR) and the
// trust between instances (CLUSTER_SECRET).

// access returns the API's access policy: the authenticators the settings
// configure (a token file, an identity provider, or both), or none.
func (s *Service) access(ctx context.Context) (httpapi.Access, error) {
	var chain auth.Chain
	if f := s.cfg.AuthTokensFile; f != "" {
		tf, err := auth.LoadTokenFile(f, s.log)
		if err != nil {
			return httpapi.Access{}, fmt.Errorf("AUTH_TOKENS_FILE: %w", err)
		}
		s.log.Info("authentication: bearer tokens of a token file", "file", f, "tokens", tf.Len())
		chain = append(chain, tf)
	}
	if s.cfg.AuthIssuer != "" {
		o, err := auth.NewOIDC(auth.OIDCConfig{
			Issuer: s.cfg.AuthIssuer, Audience: s.cfg.AuthAudience, RolesClaim: s.cfg.AuthRolesClaim, Logger: s.log,
		})
		if err != nil {
			return httpapi.Access{}, fmt.Errorf("AUTH_ISSUER: %w", err)
		}
		// An identity provider that is down at start should not keep
		// the catalog down: tokens are checked once it answers (503
		// until then). A wrong AUTH_ISSUER shows here, loudly.
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = o.Warm(wctx)
		cancel()
		if err != nil {
			s.log.Error("authentication: the identity provider's keys could not be fetched; writes answer 503 until they can", "issuer", s.cfg.AuthIssuer, "err", err)
		} else {
			s.log.Info("authentication: JWTs of an OpenID Connect provider", "issuer", s.cfg.AuthIssuer, "audience", s.cfg.AuthAudience, "roles claim", s.cfg.AuthRolesClaim)
		}
		chain = append(chain, o)
	}
	a := httpapi.Access{Reads: s.cfg.AuthReads}
	switch len(chain) {
	case 0:
	case 1:
		a.Authenticator = chain[0]
	default:
		a.Authenticator = chain
	}
	return a, nil
}

// peers returns how this instance forwards reads to the others: with the
// cluster secret, and a client that trusts PEER_CA_FILE for https peers.
func (s *Service) peers() (*httpapi.Peers, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if f := s.cfg.PeerCAFile; f != "" {
		b, err := settingfile.Read("PEER_CA_FILE", f)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("PEER_CA_FILE: %s holds no PEM certificate", f)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &httpapi.Peers{
		Self:   s.cfg.AdvertisedURL,
		Client: &http.Client{Timeout: 10 * time.Second, Transport: tr},
		Secret: s.cfg.ClusterSecret,
		Logger: s.log,
	}, nil
}

// secureListener wraps ln in TLS when TLS_CERT_FILE is set.
func (s *Service) secureListener(ln net.Listener) (net.Listener, error) {
	if !s.cfg.TLS() {
		return ln, nil
	}
	cfg, err := httpapi.TLSConfig(s.cfg.TLSCertFile, s.cfg.TLSKeyFile, s.log)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, cfg), nil
}

// scheme is the API's URL scheme.
func (s *Service) scheme() string {
	if s.cfg.TLS() {
		return "https"
	}
	return "http"
}

// startAdmin listens on ADMIN_ADDR, when set, and adds the runner that
// serves the operator endpoints there (NewAdmin with api's settings) until
// the service stops.
func (s *Service) startAdmin(api httpapi.Config) error {
	if s.cfg.AdminAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("listen on ADMIN_ADDR %s: %w", s.cfg.AdminAddr, err)
	}
	s.closers = append(s.closers, func() { _ = ln.Close() })
	s.admin = ln
	// TLS outermost, as on HTTP_ADDR: net/http serves HTTP/2 only on a
	// *tls.Conn, and the listener offers h2.
	if ln, err = s.secureListener(httpapi.LimitListener(ln, 100)); err != nil {
		return err
	}
	if len(s.cfg.AllowedHosts) == 0 {
		api.AllowedHosts = httpapi.DefaultAllowedHosts(s.cfg.AdminAddr, "")
	}
	srv := httpapi.NewServer(httpapi.NewAdmin(api), httpapi.ServerConfig{Logger: s.log})
	s.runners = append(s.runners, func(ctx context.Context) error {
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		select {
		case err := <-served:
			return fmt.Errorf("operator http server: %w", err)
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			s.log.Warn("operator http shutdown", "err", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("operator http server: %w", err)
		}
		return nil
	})
	return nil
}

// AdminAddr returns the address of the operator listener, "" without
// ADMIN_ADDR.
func (s *Service) AdminAddr() string {
	if s.admin == nil {
		return ""
	}
	return s.admin.Addr().String()
}

// securityWarnings logs what an operator should know about the settings
// at start: what is open to whom.
func (s *Service) securityWarnings(listen net.Addr) {
	reachable := !loopback(listen)
	if !s.cfg.AuthEnabled() {
		if reachable {
			s.log.Warn("AUTH=none: anyone who reaches the HTTP API can change the catalog and read its operator endpoints (docs/security.md)", "http", listen.String())
		} else {
			s.log.Info("no authentication: the HTTP API listens on a loopback address only; see docs/security.md to serve others", "http", listen.String())
		}
	}
	if s.cfg.AuthEnabled() && !s.cfg.TLS() && reachable {
		s.log.Warn("bearer tokens reach this instance in clear text: set TLS_CERT_FILE and TLS_KEY_FILE, or terminate TLS in front of it", "http", listen.String())
	}
	if len(s.cfg.ClusterSecret) == 0 {
		if reachable {
			s.log.Warn("CLUSTER_SECRET is not set: if several instances share this service, whatever joins their consumer groups can have reads forwarded to a URL it names, and requests claiming to be forwarded are believed; set the same CLUSTER_SECRET on every instance (docs/security.md)")
		}
		if s.cfg.AuthReads {
			s.log.Warn("AUTH_READS without CLUSTER_SECRET: reads forwarded between instances carry no token and are refused (401); set CLUSTER_SECRET if several instances share this service")
		}
	}
}

// loopback reports whether a listener's address is a loopback one.
func loopback(a net.Addr) bool {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && ip.IsLoopback()
}
