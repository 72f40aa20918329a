// Command cairn is the operator CLI of the Cairn control plane: it onboards
// and runs tenants, their stacks, sources, profiles, segments, grants and
// webhooks over the REST API, through the generated Go client (package
// client) and nothing else.
//
// Where it talks to and with which token comes from contexts, like
// kubectl's, kept in the user's config directory (cairn/config, mode 0600);
// --context, --server and --token, or CAIRN_SERVER and CAIRN_TOKEN, override
// them. Results print as a table for people, or as the API's own JSON (-o
// json) or YAML (-o yaml) for scripts. The exit code says what went wrong:
// see exitCode.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err))
}

// run runs one cairn command line. It prints any error to stderr itself
// (an API problem's title, detail and field errors) and returns it, so that
// the caller can turn it into an exit code with exitCode.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	a := &app{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	if !a.ran && !isClassified(err) {
		// Cobra refused the command line before any command ran: an
		// unknown command or flag, or the wrong number of arguments.
		err = usageError{err}
	}
	printError(stderr, cmd, err)
	return err
}

// Exit codes, documented in `cairn --help` and the README.
const (
	exitOK        = 0
	exitFailure   = 1 // anything else: a file that cannot be read, a config that cannot be written
	exitUsage     = 2 // the command line is wrong; nothing was sent
	exitRefused   = 3 // the API answered with a problem (4xx or 5xx)
	exitTransport = 4 // the API could not be reached, or its answer not read
	exitWait      = 5 // a wait timed out, or reached a state it can never leave
)

const exitCodesHelp = `Exit codes:
  0  success
  1  any other failure (a file that cannot be read, a config that cannot be written)
  2  usage error: the command line is wrong, nothing was sent
  3  the API refused the request (its problem's title and detail are printed)
  4  transport failure: the server could not be reached or its answer not read
  5  a wait timed out, or the resource reached a state it cannot leave`

// usageError is a command line that cannot be run as given.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// transportError is a request that got no readable answer.
type transportError struct{ err error }

func (e transportError) Error() string { return e.err.Error() }
func (e transportError) Unwrap() error { return e.err }

// waitError is a wait that did not see its condition.
type waitError struct{ msg string }

func (e waitError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func isClassified(err error) bool {
	var (
		u usageError
		t transportError
		w waitError
		p *apiError
	)
	return errors.As(err, &u) || errors.As(err, &t) || errors.As(err, &w) || errors.As(err, &p)
}

// exitCode maps an error returned by run to the process's exit code.
func exitCode(err error) int {
	var (
		u usageError
		t transportError
		w waitError
		p *apiError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &p):
		return exitRefused
	case errors.As(err, &u):
		return exitUsage
	case errors.As(err, &t):
		return exitTransport
	case errors.As(err, &w):
		return exitWait
	default:
		return exitFailure
	}
}
