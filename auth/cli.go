package auth

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

const tokensUsage = `usage:
  catalog tokens new ROLE SUBJECT
        make a random token for SUBJECT with ROLE (reader, writer or admin):
        the line for AUTH_TOKENS_FILE goes to standard output, the token
        itself to standard error, shown this once
  catalog tokens hash < token
        print the SHA-256 of each token read from standard input, one a
        line, as AUTH_TOKENS_FILE lists them

For example:
  catalog tokens new writer alice >> tokens.txt
`

// errNoToken: a token to hash was expected.
var errNoToken = errors.New("no token on standard input")

// TokensCommand runs `catalog tokens new|hash`, which make the lines of a
// token file (AUTH_TOKENS_FILE). Tokens are read from stdin, never from
// the arguments, which other users of the machine can see.
func TokensCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("catalog tokens", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tokensUsage) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		fs.Usage()
		return errors.New("tokens: want new or hash")
	}
	switch args[0] {
	case "new":
		if len(args) < 3 {
			fs.Usage()
			return errors.New("tokens new: want ROLE and SUBJECT")
		}
		role, err := ParseRole(args[1])
		if err != nil {
			return fmt.Errorf("tokens new: %w", err)
		}
		subject := strings.Join(args[2:], " ")
		if err := CheckSubject(subject); err != nil {
			return fmt.Errorf("tokens new: %w", err)
		}
		token, err := NewToken()
		if err != nil {
			return fmt.Errorf("tokens new: %w", err)
		}
		if _, err := fmt.Fprintf(stdout, "%s %s %s\n", HashToken(token), role, subject); err != nil {
			return fmt.Errorf("tokens new: %w", err)
		}
		fmt.Fprintf(stderr, "token for %s (%s), shown this once; only its hash is in the line above:\n%s\n", subject, role, token)
		return nil
	case "hash":
		if len(args) > 1 {
			return errors.New("tokens hash: reads the tokens from standard input, not from arguments")
		}
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 0, 4096), 64<<10)
		n := 0
		for sc.Scan() {
			token := strings.TrimSpace(sc.Text())
			if token == "" {
				continue
			}
			n++
			if _, err := fmt.Fprintln(stdout, HashToken(token)); err != nil {
				return fmt.Errorf("tokens hash: %w", err)
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("tokens hash: read standard input: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("tokens hash: %w", errNoToken)
		}
		return nil
	}
	fs.Usage()
	return fmt.Errorf("tokens: unknown subcommand %q: want new or hash", args[0])
}
