package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/attribution"
	"github.com/shoptrail/shoptrail/engine/buildinfo"
	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/metrics"
	"github.com/shoptrail/shoptrail/engine/segment"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
	"github.com/shoptrail/shoptrail/engine/user"
)

// ControlFile is the file in the data directory through which commands
// reach the running instance (shoptrail backup): the admin listener's URL
// and a token made at every start. It is readable by its owner only, so
// whoever can use it could read the data directory anyway; it is removed at
// shutdown (a stale one, after kill -9, is ignored: the lock is free).
const ControlFile = "control.json"

// control is ControlFile's content.
type control struct {
	AdminURL string `json:"admin_url"`
	Token    string `json:"token"`
	PID      int    `json:"pid"`
}

func newToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// writeControl writes ControlFile once the admin listener's address is known.
func (a *App) writeControl() error {
	u := a.AdminURL
	// a listener on every address is reached on loopback
	if host, port, err := net.SplitHostPort(a.adminLn.Addr().String()); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			u = "http://" + net.JoinHostPort("127.0.0.1", port)
		}
	}
	b, _ := json.Marshal(control{AdminURL: u, Token: a.backupToken, PID: os.Getpid()})
	p := filepath.Join(a.cfg.Storage.Dir, ControlFile)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("control file: %w", err)
	}
	return os.Rename(tmp, p)
}

func (a *App) removeControl() { os.Remove(filepath.Join(a.cfg.Storage.Dir, ControlFile)) }

// registerMetrics adds the gauges read at scrape time.
func (a *App) registerMetrics(m *metrics.Metrics) {
	m.Gauge("shoptrail_ingest_pending_events", "Events accepted but not yet committed to the log.",
		func() float64 { return float64(a.Tracker.Pending()) })
	m.GaugeVec("shoptrail_projection_lag_events", "Events of the log a projection has not folded yet.", "projection", func() map[string]float64 {
		out := map[string]float64{}
		for _, s := range a.Pipeline.Status() {
			out[s.Name] = float64(s.Behind)
		}
		return out
	})
	m.GaugeVec("shoptrail_projection_failed", "1 while a projection is stopped by an error (it is retried), else 0.", "projection", func() map[string]float64 {
		out := map[string]float64{}
		for _, s := range a.Pipeline.Status() {
			out[s.Name] = 0
			if s.Error != "" {
				out[s.Name] = 1
			}
		}
		return out
	})
	m.Gauge("shoptrail_mapped_resident_bytes", "Bytes of the data directory's memory-mapped files in the resident set at the last look (see [storage] mapped_limit).",
		func() float64 { return float64(a.mapped.Stats().Resident) })
	m.Gauge("shoptrail_mapped_reclaimed_bytes", "Bytes of mapped data files the kernel was asked to take out of the resident set, since the start.",
		func() float64 { return float64(a.mapped.Stats().Freed) })
	m.Gauge("shoptrail_badger_lsm_bytes", "Size of Badger's LSM tree (keys and small values) on disk.",
		func() float64 { lsm, _ := a.Store.Size(); return float64(lsm) })
	m.Gauge("shoptrail_badger_vlog_bytes", "Size of Badger's value log (events, profiles, sessions, products) on disk.",
		func() float64 { _, vlog := a.Store.Size(); return float64(vlog) })
	m.Gauge("shoptrail_events_last_seq", "Seq of the newest event in the log (events stored since the start, erased and expired ones included).",
		func() float64 { n, _ := a.Store.LastSeq(); return float64(n) })
	m.Gauge("shoptrail_feed_last_import_timestamp", "Unix time the last product feed import finished (0: never).", func() float64 {
		rep, err := a.Catalog.Report()
		if err != nil || rep.Finished.IsZero() {
			return 0
		}
		return float64(rep.Finished.Unix())
	})
	m.Gauge("shoptrail_disk_free_bytes", "Free bytes on the data directory's file system.",
		func() float64 { return float64(a.Disk.Status().Free) })
	m.Gauge("shoptrail_disk_writes_refused", "1 while writes are refused for lack of disk space or an unwritable data directory.", func() float64 {
		if a.Disk.Check() != nil {
			return 1
		}
		return 0
	})
	m.Gauge("shoptrail_backup_last_success_timestamp", "Unix time the last backup (scheduled, or through shoptrail backup) completed (0: none since start).",
		func() float64 { return float64(a.lastBackup.Load()) })
}

// exportParts are the sections of a person's data export, in order. A
// package that stores something about people adds its line here (email
// activity is in the events: email_send, email_open...).
func exportParts(st *store.Store, t *track.Tracker, segs *segment.Service) []user.ExportPart {
	return []user.ExportPart{
		{Name: "events", Each: func(ctx context.Context, p user.Person, emit func(any) error) error {
			q := track.Query{Email: p.Email, Limit: track.MaxLimit}
			for {
				page, err := t.EventsPage(q)
				if err != nil {
					return err
				}
				for _, ev := range page.Events {
					if err := emit(ev); err != nil {
						return err
					}
				}
				if page.NextBefore == 0 {
					return nil
				}
				q.Before = page.NextBefore
			}
		}},
		{Name: "sessions", Each: func(ctx context.Context, p user.Person, emit func(any) error) error {
			return st.Read(func(tx *store.Tx) error {
				sessions, err := tx.Sessions(p.ProfileID)
				if err != nil {
					return err
				}
				for _, s := range sessions {
					if err := emit(s); err != nil {
						return err
					}
				}
				return nil
			})
		}},
		{Name: "touchpoints", Each: func(ctx context.Context, p user.Person, emit func(any) error) error {
			return st.Read(func(tx *store.Tx) error {
				tps, err := tx.Touchpoints(p.ProfileID)
				if err != nil {
					return err
				}
				for _, tp := range tps {
					if err := emit(tp); err != nil {
						return err
					}
				}
				return nil
			})
		}},
		{Name: "attribution", Each: func(ctx context.Context, p user.Person, emit func(any) error) error {
			return st.Read(func(tx *store.Tx) error {
				orders, err := attribution.ProfileOrders(tx, p.ProfileID)
				if err != nil {
					return err
				}
				for _, o := range orders {
					if err := emit(o); err != nil {
						return err
					}
				}
				return nil
			})
		}},
		{Name: "segments", Each: func(_ context.Context, p user.Person, emit func(any) error) error {
			in, err := segs.ProfileSegments(p.ProfileID)
			for _, m := range in {
				if err := emit(m); err != nil {
					return err
				}
			}
			return err
		}},
	}
}

// sweepChunk is how many events one retention transaction drops.
const sweepChunk = 2000

// retentionLoop drops events older than [storage] retention: a sweep at
// start and every hour, in chunks between folds, pausing while ingestion
// is busy.
func (a *App) retentionLoop(ctx context.Context) {
	keep := a.cfg.Storage.Retention.Duration
	if keep <= 0 {
		return
	}
	log := a.log.With("component", "retention")
	timer := time.NewTimer(time.Minute) // let the projections catch up after a start
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		total, err := a.Sweep(ctx, time.Now().Add(-keep))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("retention sweep", "err", err, "dropped", total)
		case total > 0:
			log.Info("retention sweep: dropped old events", "dropped", total, "older_than", keep.String())
		}
		timer.Reset(time.Hour)
	}
}

// Sweep drops every event received before cutoff that all projections have
// folded, a chunk at a time, and returns how many it dropped.
func (a *App) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for {
		for a.Tracker.Busy() {
			select {
			case <-ctx.Done():
				return total, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		n, err := a.Pipeline.Sweep(ctx, cutoff, sweepChunk)
		total += n
		a.metrics.Swept(n)
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// backupName is how scheduled backups are named; their names sort by time.
const backupPrefix, backupSuffix = "shoptrail-", ".backup"

// backupLoop takes a full backup every [backup] every into [backup] dir
// and keeps the newest [backup] keep. The next one is due every after the
// newest file there, so a restart neither skips nor repeats one.
func (a *App) backupLoop(ctx context.Context) {
	b := a.cfg.Backup
	if b.Dir == "" {
		return
	}
	log := a.log.With("component", "backup")
	if err := os.MkdirAll(b.Dir, 0o700); err != nil {
		log.Error("scheduled backups are off: cannot make [backup] dir", "err", err)
		return
	}
	for {
		wait := time.Minute
		if newest, ok := newestBackup(b.Dir); ok {
			wait = max(time.Until(newest.Add(b.Every.Duration)), 0)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		path, version, err := a.backupTo(b.Dir)
		if err != nil {
			log.Error("scheduled backup failed; retrying in 10 minutes", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Minute):
			}
			continue
		}
		log.Info("scheduled backup taken", "file", path, "version", version)
		if err := pruneBackups(b.Dir, b.Keep); err != nil {
			log.Warn("remove old backups", "err", err)
		}
	}
}

// backupTo writes a full backup file into dir, atomically.
func (a *App) backupTo(dir string) (string, uint64, error) {
	name := backupPrefix + time.Now().UTC().Format("20060102T150405Z") + backupSuffix
	path := filepath.Join(dir, name)
	version, err := writeFileAtomic(path, func(w io.Writer) (uint64, error) {
		return a.Store.Backup(w, 0, buildinfo.String())
	})
	if err == nil {
		a.lastBackup.Store(time.Now().Unix())
	}
	return path, version, err
}

// writeFileAtomic writes path through a temporary file: fsynced and
// renamed only when fill succeeded, so a crash never leaves half a file
// under the name.
func writeFileAtomic(path string, fill func(io.Writer) (uint64, error)) (uint64, error) {
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	v, err := fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return v, nil
}

func scheduledBackups(dir string) []os.DirEntry {
	entries, _ := os.ReadDir(dir)
	return slices.DeleteFunc(entries, func(e os.DirEntry) bool {
		return e.IsDir() || !strings.HasPrefix(e.Name(), backupPrefix) || !strings.HasSuffix(e.Name(), backupSuffix)
	})
}

func newestBackup(dir string) (time.Time, bool) {
	entries := scheduledBackups(dir)
	if len(entries) == 0 {
		return time.Time{}, false
	}
	info, err := entries[len(entries)-1].Info()
	if err != nil {
		return time.Time{}, false
	}
	return info.ModTime(), true
}

// pruneBackups removes all but the newest keep scheduled backups.
func pruneBackups(dir string, keep int) error {
	entries := scheduledBackups(dir)
	var errs []error
	for i := 0; i < len(entries)-keep; i++ {
		errs = append(errs, os.Remove(filepath.Join(dir, entries[i].Name())))
	}
	return errors.Join(errs...)
}

// Backup writes a backup file of the data directory in cfg to out: through
// the running instance's admin listener when one holds the directory (the
// control file gives its address and token), else from the store directly.
// since > 0 takes an incremental backup of what changed from that version
// on. The file appears under out only when complete and verified.
func Backup(ctx context.Context, cfg config.Config, out string, since uint64) (store.BackupInfo, error) {
	_, err := writeFileAtomic(out, func(w io.Writer) (uint64, error) {
		st, err := store.Open(store.Options{Dir: cfg.Storage.Dir})
		if errors.Is(err, store.ErrLocked) {
			return 0, remoteBackup(ctx, cfg.Storage.Dir, w, since)
		}
		if err != nil {
			return 0, err
		}
		v, err := st.Backup(w, since, buildinfo.String())
		return v, errors.Join(err, st.Close())
	})
	if err != nil {
		return store.BackupInfo{}, err
	}
	info, err := store.VerifyBackup(out)
	if err != nil {
		os.Remove(out)
	}
	return info, err
}

// remoteBackup asks the instance that holds dir for a backup.
func remoteBackup(ctx context.Context, dir string, w io.Writer, since uint64) error {
	b, err := os.ReadFile(filepath.Join(dir, ControlFile))
	if err != nil {
		return fmt.Errorf("shoptrail is running on %s but its control file cannot be read (%w); run this command as the user shoptrail runs as", dir, err)
	}
	var c control
	if err := json.Unmarshal(b, &c); err != nil || c.AdminURL == "" || c.Token == "" {
		return fmt.Errorf("the control file in %s is damaged; restart shoptrail to write it again", dir)
	}
	u := c.AdminURL + "/backup"
	if since > 0 {
		u += "?since=" + strconv.FormatUint(since, 10)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	// not a browser: the admin listener's Host check (against DNS
	// rebinding) need not see the address it listens on
	req.Host = "localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("shoptrail holds %s but its admin listener does not answer: %w", dir, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body struct {
			Error struct{ Message string } `json:"error"`
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(raw, &body) == nil && body.Error.Message != "" {
			return fmt.Errorf("the running shoptrail refused the backup: %s", body.Error.Message)
		}
		return fmt.Errorf("the running shoptrail answered %s", resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// Restore loads backup files (a full one, then incremental ones in order)
// into the empty directory dir, and rebuilds the product index there, so
// that shoptrail started on dir answers as the backed-up instance did.
func Restore(cfg config.Config, dir string, files []string, log *slog.Logger) ([]store.BackupInfo, error) {
	infos, err := store.Restore(dir, files)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(store.Options{Dir: dir, Logger: log.With("component", "badger")})
	if err != nil {
		return infos, err
	}
	cat, err := catalog.Open(st, filepath.Join(dir, "search-index"), cfg.Feed.Columns, log.With("component", "catalog"))
	if err != nil {
		return infos, errors.Join(err, st.Close())
	}
	cat.WaitIndexed()
	return infos, errors.Join(cat.Close(), st.Close())
}
