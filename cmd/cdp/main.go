// Command cdp is the operator's command line for the CDP.
//
//	cdp apply -f cdp.yaml [--dry-run] [--prune] [--url URL] [--token TOKEN]
//	cdp admin-token create --table NAME [--name NAME]
//	cdp admin-token list   --table NAME
//	cdp admin-token revoke --table NAME TOKEN_ID
//	cdp privacy request|get|list|suppressions …
//	cdp replay start|get|list …
//	cdp identity dry-run -f RULES --from TIME --to TIME …
//	cdp import -f FILE --write-key KEY --map … | --mapping FILE
//
// apply, privacy, replay and identity talk to the admin API (--url or CDP_ADMIN_URL, default http://127.0.0.1:8080; --token
// or CDP_ADMIN_TOKEN). admin-token talks to DynamoDB directly with the operator's AWS credentials
// (--table or CDP_TABLE), which is how the first admin token of a deployment is made.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/config"
)

const defaultAdminURL = "http://127.0.0.1:8080"

const usage = `usage:
  cdp apply -f FILE [--dry-run] [--prune] [--url URL] [--token TOKEN]
      Make the CDP match a config file (YAML or JSON) through the admin API, printing the diff:
      sources, identityRules, computedTraits, audiences, destinations. Write keys and signing
      secrets of created resources are printed once. --prune deletes, within each kind the
      file declares (an empty list counts), what the file does not; kinds the file does not
      mention are left alone, and identity rules are never pruned.
      --url defaults to $CDP_ADMIN_URL or ` + defaultAdminURL + `; --token to $CDP_ADMIN_TOKEN.
  cdp admin-token create --table NAME [--name NAME]
  cdp admin-token list   --table NAME
  cdp admin-token revoke --table NAME TOKEN_ID
      Manage admin API tokens directly in DynamoDB with your AWS credentials.
      --table defaults to $CDP_TABLE.
` + privacyUsage + replayUsage + identityUsage + importUsage

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run executes the command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	err := dispatch(ctx, args, stdout, stderr, getenv)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stderr, usage)
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "cdp: %v\n\n%s", err, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "cdp: %v\n", err)
		return 1
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command", errUsage)
	}
	switch args[0] {
	case "apply":
		return apply(ctx, args[1:], stdout, getenv)
	case "admin-token":
		if len(args) < 2 {
			return fmt.Errorf("%w: admin-token needs create, list or revoke", errUsage)
		}
		return adminToken(ctx, args[1], args[2:], stdout, stderr, getenv)
	case "privacy":
		return privacyCmd(ctx, args[1:], stdout, getenv)
	case "replay":
		return replayCmd(ctx, args[1:], stdout, getenv)
	case "identity":
		return identityCmd(ctx, args[1:], stdout, getenv)
	case "import":
		return importCmd(ctx, args[1:], stdout, stderr, getenv)
	case "help", "-h", "--help":
		return flag.ErrHelp
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

// parse parses flags that may come before or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

func apply(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	file := fs.String("f", "", "config file (YAML or JSON)")
	dryRun := fs.Bool("dry-run", false, "print the diff, change nothing")
	prune := fs.Bool("prune", false, "within each kind the file declares, delete what it does not list")
	url := fs.String("url", envOr(getenv, "CDP_ADMIN_URL", defaultAdminURL), "admin API base URL")
	token := fs.String("token", getenv("CDP_ADMIN_TOKEN"), "admin token")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
	}
	if *file == "" {
		return fmt.Errorf("%w: apply needs -f FILE", errUsage)
	}
	// The file is read and validated before anything talks to the CDP.
	f, err := config.Load(*file)
	if err != nil {
		return err
	}
	client, err := config.NewClient(*url, *token, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	_, err = config.Apply(ctx, client, f, config.Options{DryRun: *dryRun, Prune: *prune, Out: stdout})
	return err
}

func adminToken(ctx context.Context, sub string, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("admin-token "+sub, flag.ContinueOnError)
	table := fs.String("table", getenv("CDP_TABLE"), "DynamoDB table of the CDP")
	name := fs.String("name", "", "what the token is for (create)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *table == "" {
		return fmt.Errorf("%w: admin-token %s needs --table NAME (or CDP_TABLE)", errUsage, sub)
	}
	store := func() (*admintoken.Store, error) {
		clients, err := awsenv.Load(ctx)
		if err != nil {
			return nil, err
		}
		return admintoken.NewStore(clients.DynamoDB, *table), nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	switch sub {
	case "create":
		if len(rest) > 0 {
			return fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
		}
		if *name == "" {
			*name = "created by " + envOr(getenv, "USER", "cdp") + " with the cdp CLI"
		}
		s, err := store()
		if err != nil {
			return err
		}
		tok, plain, err := s.Create(ctx, *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "Created admin token %s (%s). It is shown once; store it now.\n", tok.ID, tok.Name)
		fmt.Fprintln(stdout, plain)
		return nil
	case "list":
		if len(rest) > 0 {
			return fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
		}
		s, err := store()
		if err != nil {
			return err
		}
		toks, err := s.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tCREATED\tNAME")
		for _, t := range toks {
			fmt.Fprintf(w, "%s\t%s\t%s\n", t.ID, t.CreatedAt.UTC().Format(time.RFC3339), t.Name)
		}
		return w.Flush()
	case "revoke":
		if len(rest) != 1 || strings.TrimSpace(rest[0]) == "" {
			return fmt.Errorf("%w: admin-token revoke needs one TOKEN_ID", errUsage)
		}
		s, err := store()
		if err != nil {
			return err
		}
		if err := s.Revoke(ctx, rest[0]); err != nil {
			if errors.Is(err, admintoken.ErrNotFound) {
				return fmt.Errorf("no admin token with id %s", rest[0])
			}
			return err
		}
		fmt.Fprintf(stderr, "Revoked admin token %s.\n", rest[0])
		return nil
	}
	return fmt.Errorf("%w: unknown admin-token command %q", errUsage, sub)
}
