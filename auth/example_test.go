package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/bookscatalog/catalog/auth"
)

// ExampleTokenFile issues a token, lists its hash in a token file, and
// authenticates requests' bearer tokens with the file: the principal's
// subject and roles are what an HTTP layer checks and records.
func ExampleTokenFile() {
	dir, err := os.MkdirTemp("", "auth-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	token, err := auth.NewToken() // given to alice, shown once
	if err != nil {
		fmt.Println(err)
		return
	}
	path := filepath.Join(dir, "tokens.txt")
	line := auth.HashToken(token) + " writer alice\n" // the file holds no token
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		fmt.Println(err)
		return
	}
	tokens, err := auth.LoadTokenFile(path, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx := context.Background()
	p, err := tokens.Authenticate(ctx, token)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Subject, p.Has(auth.RoleReader), p.Has(auth.RoleWriter), p.Has(auth.RoleAdmin))

	_, err = tokens.Authenticate(ctx, "a guess")
	fmt.Println(errors.Is(err, auth.ErrInvalidToken))
	// Output:
	// alice true true false
	// true
}

// ExampleWithPrincipal hands the caller to the code behind the HTTP
// layer, which records its subject with the commands it sends.
func ExampleWithPrincipal() {
	ctx := auth.WithPrincipal(context.Background(), &auth.Principal{Subject: "alice", Roles: []auth.Role{auth.RoleWriter}})
	fmt.Println(auth.FromContext(ctx).Subject)
	fmt.Println(auth.FromContext(context.Background()) == nil) // no authentication configured
	// Output:
	// alice
	// true
}
