// Command shoptrail is the Shoptrail appliance: one binary that tracks a
// shop's visitors, keeps their profiles and credits sales to channels.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // [reports] timezone on machines without a zone database

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/app"
	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "shoptrail:", err)
		os.Exit(1)
	}
}

const usage = `Usage:
  shoptrail [flags]                          run the appliance
  shoptrail apikey create --name NAME [--scopes events:write,...]
  shoptrail apikey list
  shoptrail apikey revoke ID
  shoptrail feed import [--force] FILE       import a product feed (CSV), replacing the catalogue
                                             (--force: even with no rows, or removing over half of it)
  shoptrail rebuild [NAME...]                fold the event log again into the projections
                                             (all, or the named: identity, products, rollups)

Flags (before the command):
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shoptrail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	cfgPath := fs.String("config", "", "path to config.toml (default: built-in defaults)")
	dataDir := fs.String("data", "", "data directory (overrides [storage] dir)")
	public := fs.String("public", "", "public listener address (overrides [http] public)")
	admin := fs.String("admin", "", "admin listener address (overrides [http] admin)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	for _, f := range []struct{ flag, into *string }{{dataDir, &cfg.Storage.Dir}, {public, &cfg.HTTP.Public}, {admin, &cfg.HTTP.Admin}} {
		if *f.flag != "" {
			*f.into = *f.flag
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	switch cmd := fs.Arg(0); cmd {
	case "", "serve":
		return serve(ctx, cfg, log, stdout)
	case "apikey":
		return apikeyCmd(cfg, fs.Args()[1:], stdout, stderr)
	case "feed":
		args := fs.Args()[1:]
		force := len(args) == 3 && args[1] == "--force"
		if force {
			args = []string{args[0], args[2]}
		}
		if len(args) != 2 || args[0] != "import" {
			return errors.New("usage: shoptrail feed import [--force] FILE")
		}
		return feedImport(cfg, args[1], force, log, stdout)
	case "rebuild":
		return withStore(cfg, "rebuild the projections", func(st *store.Store) error {
			dropped, err := app.Rebuild(st, fs.Args()[1:]...)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Dropped %s; they fold the event log again when shoptrail next starts (progress in the log and on the admin dashboard).\n", strings.Join(dropped, ", "))
			return nil
		})
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	if lim := cfg.Storage.MemoryLimit; lim > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(lim)
	}
	a, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	if err := a.Listen(); err != nil {
		return errors.Join(err, a.Close())
	}
	fmt.Fprintf(stdout, "Shoptrail is running.\n  public listener: %s  (tracker, events, API; demo shop at /demo/)\n  admin listener:  %s\n  data:            %s\n",
		a.PublicURL, a.AdminURL, cfg.Storage.Dir)
	if token := a.Guard.SetupToken(); token != "" {
		// printed, never logged: the log may be shipped elsewhere
		fmt.Fprintf(stdout, "First run: create the admin account at %s/setup?token=%s\n", a.AdminURL, token)
	}
	fmt.Fprintln(stdout, "Press Ctrl+C to stop.")
	return a.Serve(ctx)
}

// withStore opens the store for a command that runs while the server is
// stopped, and explains what to do when it is not.
func withStore(cfg config.Config, what string, fn func(*store.Store) error) error {
	if _, err := os.Stat(cfg.Storage.Dir); err == nil {
		// on a full disk Badger would crash opening the directory
		disk := store.NewDiskGuard(store.DiskOptions{Dir: cfg.Storage.Dir, MinFree: cfg.Storage.MinFree})
		if err := disk.CanOpen(); err != nil {
			return fmt.Errorf("cannot %s: %w", what, err)
		}
	}
	st, err := store.Open(store.Options{Dir: cfg.Storage.Dir})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("cannot %s: shoptrail is running on %s. Stop it (Ctrl+C or SIGTERM), run this command again, then start it", what, cfg.Storage.Dir)
	}
	if err != nil {
		return err
	}
	return errors.Join(fn(st), st.Close())
}

// feedImport imports a feed file while the server is stopped.
func feedImport(cfg config.Config, path string, force bool, log *slog.Logger, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return withStore(cfg, "import the feed", func(st *store.Store) error {
		cat, err := catalog.Open(st, filepath.Join(cfg.Storage.Dir, "search-index"), cfg.Feed.Columns, log)
		if err != nil {
			return err
		}
		defer cat.Close()
		cat.SetProductURLTemplate(cfg.Feed.ProductURLTemplate)
		rep, err := cat.ImportWith(f, path, catalog.ImportOptions{Force: force})
		fmt.Fprintf(stdout, "%s: %s format, %d rows, %d products imported (%d variations, %d hidden or unpublished), %d skipped, %d removed; %s, delimiter %q\n",
			path, rep.Format, rep.Rows, rep.Imported, rep.Variations, rep.Unlisted, rep.Skipped, rep.Removed, rep.Encoding, rep.Delimiter)
		for _, w := range rep.Warnings {
			fmt.Fprintf(stdout, "  warning: %s\n", w)
		}
		for _, e := range rep.Errors {
			fmt.Fprintf(stdout, "  line %d: %s %s\n", e.Line, e.Field, e.Message)
		}
		return err
	})
}

func apikeyCmd(cfg config.Config, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("apikey needs a command: create, list or revoke")
	}
	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
		fs.SetOutput(stderr)
		name := fs.String("name", "", "a name that says who uses the key (required)")
		scopes := fs.String("scopes", "", "comma-separated scopes (default: all)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		sc := model.AllScopes() // the flag's documented default
		if *scopes != "" {
			sc = strings.Split(*scopes, ",")
		}
		secret, k, err := apikey.New(*name, sc, time.Now())
		if err != nil {
			return err
		}
		return withStore(cfg, "create an API key (or create it in the admin UI: Settings → API keys)", func(st *store.Store) error {
			if err := st.PutAPIKey(k); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "API key %q (id %s, scopes %s):\n\n  %s\n\nIt is shown only this once; store it now. Use it as: Authorization: Bearer %s\n",
				k.Name, k.ID, strings.Join(k.Scopes, ","), secret, secret)
			return nil
		})
	case "list":
		return withStore(cfg, "list API keys", func(st *store.Store) error {
			keys, err := st.APIKeys()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSCOPES\tCREATED\tLAST USED\tSTATE")
			for _, k := range keys {
				state, used := "active", "never"
				if k.Revoked {
					state = "revoked"
				}
				if !k.LastUsed.IsZero() {
					used = k.LastUsed.Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s…\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, strings.Join(k.Scopes, ","), k.CreatedAt.Format(time.DateTime), used, state)
			}
			return tw.Flush()
		})
	case "revoke":
		if len(args) != 2 {
			return errors.New("usage: shoptrail apikey revoke ID")
		}
		return withStore(cfg, "revoke an API key", func(st *store.Store) error {
			k, err := st.RevokeAPIKey(args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Revoked API key %q (%s).\n", k.Name, k.ID)
			return nil
		})
	}
	return fmt.Errorf("unknown apikey command %q (create, list, revoke)", args[0])
}
