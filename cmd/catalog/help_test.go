package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// helpHelperEnv makes the test binary, run again by TestHelpExitsZero, run
// main with the arguments in it.
const helpHelperEnv = "CATALOG_TEST_MAIN_ARGS"

// TestHelpExitsZero: -h is asked for, not a failure: it exits 0 and its
// usage names the other commands; a bad flag still exits 1.
func TestHelpExitsZero(t *testing.T) {
	if args := os.Getenv(helpHelperEnv); args != "" {
		os.Args = append([]string{"catalog"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	for _, c := range []struct {
		args string
		code int
		want string
	}{
		{"-h", 0, "catalog schemas"},
		{"-no-such-flag", 1, "flag provided but not defined"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelpExitsZero$")
		cmd.Env = append(os.Environ(), helpHelperEnv+"="+c.args)
		out, err := cmd.CombinedOutput()
		code := 0
		if exit, ok := err.(*exec.ExitError); ok {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || !strings.Contains(string(out), c.want) {
			t.Errorf("catalog %s: exit %d, want %d; output lacks %q:\n%s", c.args, code, c.code, c.want, out)
		}
	}
}
