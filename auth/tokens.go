package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bookscatalog/catalog/settingfile"
)

// TokenFile authenticates the bearer tokens listed in a file, for setups
// without an identity provider. The file holds no token itself, only its
// SHA-256, so reading the file does not let anyone write. One token a
// line:
//
//	# SHA-256 of the token (hex)                                      role    subject
//	3f2a…64 hex digits…                                               writer  alice
//	sha256:9c1d…                                                      admin   ops-team
//
// The role is reader, writer or admin; the subject (the rest of the line)
// is recorded with every command sent with the token. Blank lines and
// lines starting with # are ignored.
//
// An unsalted hash is enough because tokens are random (NewToken makes
// 256-bit ones), not passwords: nobody can guess one from its hash.
//
// The file is read again when it changes (checked at most every
// CheckEvery), so tokens are added and revoked without a restart. A file
// that cannot be read or parsed any more keeps the tokens of its last good
// version in force, with an error logged at every check.
type TokenFile struct {
	path string
	log  *slog.Logger
	// CheckEvery is how often, at most, the file is checked for changes
	// (default 5 s; the check is a stat on a request).
	CheckEvery time.Duration
	// Now is the clock (tests).
	Now func() time.Time

	set     atomic.Pointer[tokenSet]
	checked atomic.Int64 // unix nanoseconds of the last check
	reload  sync.Mutex
}

// tokenSet is one version of the file.
type tokenSet struct {
	byHash  map[[sha256.Size]byte]*Principal
	modTime time.Time
	size    int64
}

// LoadTokenFile reads the token file at path; its errors name the line.
func LoadTokenFile(path string, log *slog.Logger) (*TokenFile, error) {
	if log == nil {
		log = slog.Default()
	}
	t := &TokenFile{path: path, log: log, CheckEvery: 5 * time.Second, Now: time.Now}
	set, err := readTokenFile(path)
	if err != nil {
		return nil, err
	}
	if len(set.byHash) == 0 {
		log.Warn("the token file lists no token: nobody can write", "file", path)
	}
	t.set.Store(set)
	t.checked.Store(t.Now().UnixNano())
	return t, nil
}

// Len returns the number of tokens in force.
func (t *TokenFile) Len() int { return len(t.set.Load().byHash) }

// Authenticate implements Authenticator.
func (t *TokenFile) Authenticate(_ context.Context, token string) (*Principal, error) {
	t.maybeReload()
	if p, ok := t.set.Load().byHash[sha256.Sum256([]byte(token))]; ok {
		return p, nil
	}
	// The lookup is by hash, so its timing tells nothing about any
	// token's bytes.
	return nil, fmt.Errorf("%w: not in the token file", ErrInvalidToken)
}

// maybeReload reads the file again if it changed since it was last read,
// at most once per CheckEvery; concurrent callers do not wait for it.
func (t *TokenFile) maybeReload() {
	now := t.Now()
	if now.Sub(time.Unix(0, t.checked.Load())) < t.CheckEvery || !t.reload.TryLock() {
		return
	}
	defer t.reload.Unlock()
	t.checked.Store(now.UnixNano())
	if err := t.Reload(); err != nil {
		t.log.Error("token file: keeping the tokens read before", "file", t.path, "err", err)
	}
}

// Reload reads the file again if its size or modification time changed.
// On error the tokens in force stay.
func (t *TokenFile) Reload() error {
	fi, err := os.Stat(t.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	cur := t.set.Load()
	if fi.ModTime().Equal(cur.modTime) && fi.Size() == cur.size {
		return nil
	}
	set, err := readTokenFile(t.path)
	if err != nil {
		return err
	}
	t.set.Store(set)
	t.log.Info("token file read again", "file", t.path, "tokens", len(set.byHash))
	return nil
}

// maxTokenFileBytes bounds the token file (about 100,000 tokens).
const maxTokenFileBytes = 16 << 20

func readTokenFile(path string) (*tokenSet, error) {
	// settingfile: a FIFO without a writer would block the start, or
	// every reload, for good; it is refused instead.
	b, fi, err := settingfile.ReadMax("token file", path, maxTokenFileBytes)
	if err != nil {
		return nil, err
	}
	byHash, err := ParseTokens(b)
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return &tokenSet{byHash: byHash, modTime: fi.ModTime(), size: fi.Size()}, nil
}

// ParseTokens parses the content of a token file (see TokenFile) into
// principals by token hash; an error names the line.
func ParseTokens(b []byte) (map[[sha256.Size]byte]*Principal, error) {
	byHash := map[[sha256.Size]byte]*Principal{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			return nil, fmt.Errorf("line %d: want the token's SHA-256 (hex), a role and a subject", n)
		}
		sum, err := hex.DecodeString(strings.TrimPrefix(fields[0], "sha256:"))
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("line %d: %q is not a SHA-256 in hex (64 digits; hash a token with `catalog tokens hash`)", n, clipField(fields[0]))
		}
		role, err := ParseRole(fields[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		// The subject is the rest of the line: it may have spaces.
		rest := strings.TrimSpace(line[len(fields[0]):])
		subject := strings.TrimSpace(rest[len(fields[1]):])
		if err := CheckSubject(subject); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		key := [sha256.Size]byte(sum)
		if _, dup := byHash[key]; dup {
			return nil, fmt.Errorf("line %d: the same token hash as an earlier line", n)
		}
		byHash[key] = &Principal{Subject: subject, Roles: []Role{role}}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return byHash, nil
}

func clipField(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// HashToken returns the SHA-256 of token in hex, as a token file lists it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// TokenPrefix starts the tokens NewToken makes, so that secret scanners and
// people recognise one.
const TokenPrefix = "catalog_"

// NewToken returns a new random token: TokenPrefix and 256 random bits.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}
