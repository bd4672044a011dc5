package embedded

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// saltedSCRAM512 is a SCRAM-SHA-512 client that knows only the salted
// password (what the broker stores), not the password itself.
type saltedSCRAM512 struct {
	user   string
	salted []byte
}

func (m saltedSCRAM512) Name() string { return "SCRAM-SHA-512" }

func (m saltedSCRAM512) Authenticate(context.Context, string) (sasl.Session, []byte, error) {
	nonce := make([]byte, 18)
	_, _ = rand.Read(nonce)
	s := &saltedSession{m: m, nonce: base64.RawStdEncoding.EncodeToString(nonce)}
	s.clientFirstBare = "n=" + m.user + ",r=" + s.nonce
	return s, []byte("n,," + s.clientFirstBare), nil
}

type saltedSession struct {
	m               saltedSCRAM512
	nonce           string
	clientFirstBare string
	step            int
}

func (s *saltedSession) Challenge(in []byte) (bool, []byte, error) {
	s.step++
	if s.step > 1 {
		return true, nil, nil // server-final: we do not check the server
	}
	var serverNonce string
	for _, kv := range strings.Split(string(in), ",") {
		if v, ok := strings.CutPrefix(kv, "r="); ok {
			serverNonce = v
		}
	}
	if !strings.HasPrefix(serverNonce, s.nonce) {
		return false, nil, errors.New("bad server nonce")
	}
	final := "c=biws,r=" + serverNonce
	authMsg := s.clientFirstBare + "," + string(in) + "," + final
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha512.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(s.m.salted, "Client Key")
	stored := sha512.Sum512(clientKey)
	sig := mac(stored[:], authMsg)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	return false, []byte(final + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// TestEmbeddedCredentialNotReadableByOtherUsers: the embedded broker lets
// in only clients with the password kept in DATA_DIR/kafka-password (mode
// 0600), and kfake's DATA_DIR/kafka/sasl.json holds the SCRAM salted
// password, which is all a SCRAM client needs to log in (the test shows it
// does). With the usual umask 022, StartIn used to leave DATA_DIR 0755 and
// sasl.json 0644: readable by every user of the machine. DATA_DIR/kafka is
// now 0700, and a DATA_DIR StartIn creates too.
func TestEmbeddedCredentialNotReadableByOtherUsers(t *testing.T) {
	old := syscall.Umask(0o022) // the common default
	defer syscall.Umask(old)

	dataDir := filepath.Join(t.TempDir(), "data") // as ./data: created by the service
	b, err := StartIn("127.0.0.1:0", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	saslPath := filepath.Join(dataDir, "kafka", "sasl.json")
	var raw []byte
	for deadline := time.Now().Add(5 * time.Second); ; {
		if raw, err = os.ReadFile(saslPath); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		// kfake may write it only when it stops: restart, as the
		// service does every time it starts after the first.
		b.Close()
		if b, err = StartIn("127.0.0.1:0", dataDir); err != nil {
			t.Fatal(err)
		}
		if raw, err = os.ReadFile(saslPath); err != nil {
			t.Fatalf("no %s: %v", saslPath, err)
		}
	}
	// Another user reaches sasl.json when every folder on the way lets
	// others in (x) and the file lets them read it.
	var modes []string
	reachable := true
	for _, p := range []string{dataDir, filepath.Join(dataDir, "kafka"), saslPath} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		modes = append(modes, fmt.Sprintf("%s %v", p, fi.Mode().Perm()))
		bit := os.FileMode(0o001)
		if !fi.IsDir() {
			bit = 0o004
		}
		reachable = reachable && fi.Mode().Perm()&bit != 0
	}

	var doc struct {
		Scram512 map[string]struct {
			SaltedPass []byte `json:"salted_pass"`
		} `json:"scram512"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	salted := doc.Scram512[Username].SaltedPass
	if len(salted) == 0 {
		t.Fatalf("sasl.json holds no salted password: %s", raw)
	}
	// Log in with the salted password alone, never reading kafka-password.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.SASL(saltedSCRAM512{user: Username, salted: salted}),
		kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, loginErr := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "catalog.authors.commands")
	pw, _ := os.ReadFile(filepath.Join(dataDir, PasswordFile))
	if loginErr != nil || bytes.Contains(raw, bytes.TrimSpace(pw)) {
		t.Fatalf("the salted password of %s should log in alone (%v): the test no longer shows what a reader of the file could do", saslPath, loginErr)
	}
	if reachable {
		t.Errorf("readable by every user of the machine: %s; with the salted password in it alone (no kafka-password), "+
			"a client logs in to the embedded broker as %q", strings.Join(modes, ", "), Username)
	}
	if fi, err := os.Stat(dataDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("a DATA_DIR StartIn creates: %v (%v), want 0700", fi.Mode().Perm(), err)
	}
}
