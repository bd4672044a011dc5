package auth_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/auth"
)

func TestRoles(t *testing.T) {
	for _, c := range []struct {
		has  []auth.Role
		want auth.Role
		ok   bool
	}{
		{[]auth.Role{auth.RoleReader}, auth.RoleReader, true},
		{[]auth.Role{auth.RoleReader}, auth.RoleWriter, false},
		{[]auth.Role{auth.RoleWriter}, auth.RoleReader, true},
		{[]auth.Role{auth.RoleWriter}, auth.RoleWriter, true},
		{[]auth.Role{auth.RoleWriter}, auth.RoleAdmin, false},
		{[]auth.Role{auth.RoleAdmin}, auth.RoleWriter, true},
		{[]auth.Role{"owner"}, auth.RoleReader, false},
		{nil, auth.RoleReader, false},
		{[]auth.Role{auth.RoleAdmin}, "owner", false},
	} {
		p := &auth.Principal{Subject: "s", Roles: c.has}
		if got := p.Has(c.want); got != c.ok {
			t.Errorf("%v has %s = %v, want %v", c.has, c.want, got, c.ok)
		}
	}
	var none *auth.Principal
	if none.Has(auth.RoleReader) {
		t.Error("a nil principal has a role")
	}
}

func TestCheckSubject(t *testing.T) {
	for s, ok := range map[string]bool{
		"alice":                      true,
		"Jane Doe":                   true,
		"service-account@example.io": true,
		"":                           false,
		" alice":                     false,
		"al\nice":                    false,
		"al\u202eice":                false, // right-to-left override
		"\xff":                       false,
		strings.Repeat("a", 255):     true,
		strings.Repeat("a", 256):     false,
	} {
		if err := auth.CheckSubject(s); (err == nil) != ok {
			t.Errorf("CheckSubject(%q) = %v, want ok=%v", s, err, ok)
		}
	}
}

func TestParseTokens(t *testing.T) {
	h := auth.HashToken("t1")
	for _, c := range []struct {
		name, file, err string
	}{
		{"ok", "# comment\n\n" + h + " writer alice\nsha256:" + auth.HashToken("t2") + " admin Ops Team\n", ""},
		{"short hash", "abc writer alice\n", "line 1: \"abc\" is not a SHA-256"},
		{"unknown role", h + " owner alice\n", "line 1: unknown role \"owner\""},
		{"no subject", "\n" + h + " writer\n", "line 2: want the token's SHA-256"},
		{"control character in subject", h + " writer al\x01ice\n", "line 1: subject has the control character"},
		{"duplicate", h + " writer alice\n" + h + " reader bob\n", "line 2: the same token hash"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := auth.ParseTokens([]byte(c.file))
			if c.err == "" {
				if err != nil || len(got) != 2 {
					t.Fatalf("got %v, %v", got, err)
				}
				for _, p := range got {
					if p.Subject == "Ops Team" && (len(p.Roles) != 1 || p.Roles[0] != auth.RoleAdmin) {
						t.Fatalf("subject with a space: %+v", p)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err = %v, want %q", err, c.err)
			}
		})
	}
}

func TestTokenFileAuthenticates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	write(t, path, auth.HashToken("secret-writer")+" writer alice\n"+auth.HashToken("secret-reader")+" reader bob\n")
	tf, err := auth.LoadTokenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tf.Authenticate(context.Background(), "secret-writer")
	if err != nil || p.Subject != "alice" || !p.Has(auth.RoleWriter) || p.Has(auth.RoleAdmin) {
		t.Fatalf("writer token: %+v, %v", p, err)
	}
	for _, bad := range []string{"", "secret", "secret-writer ", auth.HashToken("secret-writer")} {
		if _, err := tf.Authenticate(context.Background(), bad); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("token %q: err = %v, want ErrInvalidToken", bad, err)
		}
	}
}

// An edited token file takes effect without a restart: a revoked token
// stops working, a new one works; a broken edit keeps what was in force.
func TestTokenFileReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	write(t, path, auth.HashToken("old")+" writer alice\n")
	tf, err := auth.LoadTokenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The clock starts where the load checked the file.
	now := time.Now()
	tf.Now = func() time.Time { return now }
	ctx := context.Background()

	write(t, path, auth.HashToken("new")+" writer carol\n")
	touch(t, path, 1)
	// Not checked again before CheckEvery has passed.
	if _, err := tf.Authenticate(ctx, "old"); err != nil {
		t.Fatalf("old token before the next check: %v", err)
	}
	now = now.Add(tf.CheckEvery)
	if _, err := tf.Authenticate(ctx, "old"); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("revoked token: %v", err)
	}
	if p, err := tf.Authenticate(ctx, "new"); err != nil || p.Subject != "carol" {
		t.Fatalf("new token: %+v, %v", p, err)
	}

	write(t, path, "not a token line\n")
	touch(t, path, 2)
	now = now.Add(tf.CheckEvery)
	if p, err := tf.Authenticate(ctx, "new"); err != nil || p.Subject != "carol" {
		t.Fatalf("after a broken edit: %+v, %v", p, err)
	}
	if err := tf.Reload(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("Reload of a broken file: %v", err)
	}
}

func TestTokensCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := auth.TokensCommand([]string{"new", "writer", "Jane", "Doe"}, nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	token := lines[len(lines)-1]
	if !strings.HasPrefix(token, auth.TokenPrefix) || len(token) < 40 {
		t.Fatalf("token %q", token)
	}
	if strings.Contains(out.String(), token) {
		t.Fatal("the token itself went to standard output")
	}
	set, err := auth.ParseTokens(out.Bytes())
	if err != nil || len(set) != 1 {
		t.Fatalf("the line %q does not parse: %v", out.String(), err)
	}
	path := filepath.Join(t.TempDir(), "tokens")
	write(t, path, out.String())
	tf, err := auth.LoadTokenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := tf.Authenticate(context.Background(), token); err != nil || p.Subject != "Jane Doe" || !p.Has(auth.RoleWriter) {
		t.Fatalf("the new token: %+v, %v", p, err)
	}

	out.Reset()
	if err := auth.TokensCommand([]string{"hash"}, strings.NewReader(token+"\n\nabc\n"), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if want := auth.HashToken(token) + "\n" + auth.HashToken("abc") + "\n"; out.String() != want {
		t.Fatalf("hash printed %q, want %q", out.String(), want)
	}
	// printf %s abc | sha256sum
	if auth.HashToken("abc") != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatal("HashToken is not the SHA-256 in hex")
	}
	for _, args := range [][]string{{}, {"new", "writer"}, {"new", "owner", "x"}, {"hash", "tok"}, {"frob"}} {
		if err := auth.TokensCommand(args, strings.NewReader(""), &out, &errOut); err == nil {
			t.Errorf("tokens %q: no error", args)
		}
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// touch sets path's modification time n seconds after an arbitrary
// instant, so that a rewrite is seen as a change whatever the file
// system's time resolution.
func touch(t *testing.T, path string, n int) {
	t.Helper()
	at := time.Unix(1_700_000_000+int64(n), 0)
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}
