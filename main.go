// Command shoptrail is the Shoptrail appliance: one binary that tracks a
// shop's visitors, keeps their profiles and credits sales to channels.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // [reports] timezone on machines without a zone database

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/app"
	"github.com/shoptrail/shoptrail/engine/buildinfo"
	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
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
  shoptrail rebuild [--force] [NAME...]      fold the event log again into the projections
                                             (all, or the named: identity, products, rollups);
                                             --force: even after [storage] retention dropped events
  shoptrail backup -o FILE [--since VERSION] a backup file, while shoptrail runs or not; --since:
                                             only what changed from VERSION on (incremental)
  shoptrail restore FILE [FILE...] -data DIR restore a full backup (then incremental ones, in
                                             order) into DIR, a new, empty directory
  shoptrail init [-o config.toml]            write a commented config file to edit

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
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		fmt.Fprintln(stdout, "shoptrail", buildinfo.String())
		return nil
	}
	if fs.Arg(0) == "init" { // before loading a config: there is none yet
		return initConfig(fs.Args()[1:], stdout, stderr)
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
	case "backup":
		return backupCmd(ctx, cfg, fs.Args()[1:], stdout, stderr)
	case "restore":
		return restoreCmd(cfg, *dataDir, fs.Args()[1:], log, stdout, stderr)
	case "rebuild":
		names := fs.Args()[1:]
		force := slices.Contains(names, "--force")
		names = slices.DeleteFunc(names, func(n string) bool { return n == "--force" })
		return withStore(cfg, "rebuild the projections", func(st *store.Store) error {
			if h, err := st.RetentionHorizon(); err != nil {
				return err
			} else if h > 0 && !force {
				return fmt.Errorf("[storage] retention has dropped the events up to seq %d: a rebuilt projection would hold only the events kept, and lose what it derived from the others (report totals, attribution of old orders). Run again with --force to rebuild anyway", h)
			}
			dropped, err := app.Rebuild(st, names...)
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
		// what the import changes (back in stock, cheaper) goes to the
		// log, for the automations when Shoptrail next runs
		tr := track.New(st, track.Options{MaxPendingEvents: cfg.Ingest.MaxPendingEvents, MaxBatchEvents: cfg.Ingest.MaxBatchEvents})
		defer tr.Close()
		if err := cat.RecordChangesWith(tr.Record); err != nil {
			return err
		}
		rep, err := cat.ImportWith(f, path, catalog.ImportOptions{Force: force})
		for errors.Is(err, catalog.ErrBusy) {
			// the search index is rebuilt after a crash during indexing
			// (catalog.Open): the import waits for it
			time.Sleep(100 * time.Millisecond)
			rep, err = cat.ImportWith(f, path, catalog.ImportOptions{Force: force})
		}
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

// exampleConfig is config.example.toml: what shoptrail init writes.
//
//go:embed config.example.toml
var exampleConfig []byte

// initConfig writes the commented example configuration to a file that does
// not exist yet.
func initConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "config.toml", "the file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists already; edit it, or give another name with -o", *out)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(exampleConfig); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, `Wrote %[1]s: every setting with its default and what it does.
Edit at least:
  [storage] dir              where the data lives (e.g. /var/lib/shoptrail)
  [sites] allowed_origins    your shop's origins, e.g. ["https://shop.example"]
  [http] public_url          where browsers reach the tracker, e.g. "https://track.shop.example"
  [demo] enabled             false in production
  [backup] dir               a directory for daily backups
Delete the settings you keep at their defaults. Then start:
  shoptrail -config %[1]s
`, *out)
	return nil
}

// backupCmd is shoptrail backup -o FILE [--since VERSION].
func backupCmd(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "the backup file to write (required)")
	since := fs.Uint64("since", 0, "an incremental backup: what changed from this version on (the previous backup's version + 1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return errors.New("usage: shoptrail backup -o FILE [--since VERSION]")
	}
	if _, err := os.Stat(cfg.Storage.Dir); err != nil {
		return fmt.Errorf("no data directory at %s (give -data or -config)", cfg.Storage.Dir)
	}
	info, err := app.Backup(ctx, cfg, *out, *since)
	if err != nil {
		return err
	}
	kind := "full backup"
	if info.Since > 0 {
		kind = "incremental backup from version " + strconv.FormatUint(info.Since, 10)
	}
	fmt.Fprintf(stdout, "Wrote %s: %s up to version %d, %s, checksum verified.\nThe next incremental backup: shoptrail backup -o NEXT.backup --since %d\nRestore: shoptrail restore %s [NEXT.backup...] -data NEW_EMPTY_DIR\n",
		*out, kind, info.Version, store.Bytes(uint64(info.Size)), info.Version+1, *out)
	return nil
}

// restoreCmd is shoptrail restore FILE [FILE...] -data DIR; -data may come
// before or after the files.
func restoreCmd(cfg config.Config, globalData string, args []string, log *slog.Logger, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "the new, empty data directory to restore into")
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if *dir == "" {
		*dir = globalData
	}
	if len(files) == 0 || *dir == "" {
		return errors.New("usage: shoptrail restore FILE [FILE...] -data DIR (a new, empty directory)")
	}
	infos, err := app.Restore(cfg, *dir, files, log)
	if err != nil {
		return err
	}
	last := infos[len(infos)-1]
	fmt.Fprintf(stdout, "Restored %d backup file(s) into %s, up to version %d (taken %s by shoptrail %s); the product index is rebuilt.\nStart it: shoptrail -data %s (with your config)\n",
		len(infos), *dir, last.Version, last.Created.Format(time.RFC3339), last.Shoptrail, *dir)
	return nil
}
