package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/shoptrail/shoptrail/engine/feed"
	"github.com/shoptrail/shoptrail/engine/redact"
	"github.com/shoptrail/shoptrail/engine/store"
)

// SyncOptions configures fetching the feed from a URL on a schedule.
type SyncOptions struct {
	URL          string
	Interval     time.Duration
	Timeout      time.Duration // for one whole fetch
	MaxBytes     int64
	AllowPrivate bool // allow loopback, private and link-local addresses (tests, intranets)
}

// ErrBlockedAddress means the feed URL resolved to an address that feeds
// may not be fetched from.
var ErrBlockedAddress = errors.New("catalog: the feed URL points to a private, loopback or link-local address ([feed] allow_private = true allows it)")

// Syncer fetches the feed from a URL and imports it when it changed. The
// app owns one, which serves both the schedule and the admin UI's "Sync
// now"; what the feed's server said last (ETag, Last-Modified) is stored,
// so that neither a click nor a restart imports an unchanged feed again.
type Syncer struct {
	c      *Catalog
	o      SyncOptions
	client *http.Client
	mu     sync.Mutex // one sync at a time
}

// validators are what the feed's server said about the last feed imported.
type validators struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

const validatorsSetting = "feed_sync"

// NewSyncer makes a Syncer. Addresses are checked when the connection is
// made, after DNS resolution and for every redirect, so neither a redirect
// nor DNS rebinding reaches an internal host.
func (c *Catalog) NewSyncer(o SyncOptions) *Syncer {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: func(network, address string, _ syscall.RawConn) error {
		if o.AllowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return ErrBlockedAddress
		}
		ip := ap.Addr().Unmap()
		if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
			ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || netip.MustParsePrefix("100.64.0.0/10").Contains(ip) {
			return ErrBlockedAddress
		}
		return nil
	}}
	tr := &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: o.Timeout}
	client := &http.Client{Transport: tr, Timeout: o.Timeout, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("more than 5 redirects")
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return fmt.Errorf("redirect to a %s: URL", req.URL.Scheme)
		}
		return nil
	}}
	return &Syncer{c: c, o: o, client: client}
}

// Run syncs at once and then every Interval until ctx ends.
func (s *Syncer) Run(ctx context.Context) {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		if _, err := s.Sync(ctx); err != nil && !errors.Is(err, ErrBusy) && ctx.Err() == nil {
			s.c.log.Error("feed sync", "url", redact.URL(s.o.URL), "err", redact.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync fetches the feed and imports it if it changed since the last sync
// (ETag, Last-Modified). It reports whether it imported; ErrBusy when a
// sync or an import is running.
func (s *Syncer) Sync(ctx context.Context) (bool, error) {
	if !s.mu.TryLock() {
		return false, ErrBusy
	}
	defer s.mu.Unlock()
	u, err := url.Parse(s.o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false, s.c.fail(redact.URL(s.o.URL), fmt.Errorf("catalog: [feed] url must be an http or https URL"))
	}
	if err := s.c.canWrite(); err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.o.URL, nil)
	req.Header.Set("User-Agent", "Shoptrail feed sync")
	var last validators
	if err := s.c.st.Setting(validatorsSetting, &last); err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	if last.URL == s.o.URL {
		if last.ETag != "" {
			req.Header.Set("If-None-Match", last.ETag)
		}
		if last.LastModified != "" {
			req.Header.Set("If-Modified-Since", last.LastModified)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return false, s.c.fail(redact.URL(s.o.URL), fmt.Errorf("catalog: fetch the feed: %w", err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return false, nil
	case resp.StatusCode != http.StatusOK:
		return false, s.c.fail(redact.URL(s.o.URL), fmt.Errorf("catalog: the feed URL answered %s", resp.Status))
	}
	body := &capped{r: resp.Body, max: s.o.MaxBytes}
	if _, err := s.c.Import(body, redact.URL(s.o.URL)); err != nil {
		return false, err
	}
	last = validators{URL: s.o.URL, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	if err := s.c.st.PutSetting(validatorsSetting, last); err != nil {
		return true, err
	}
	return true, nil
}

// capped fails a read past its limit, so that an import of a too large
// feed fails (and changes nothing) instead of being cut short.
type capped struct {
	r         io.Reader
	read, max int64
}

func (c *capped) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += int64(n)
	if c.read > c.max {
		return n, errTooLarge
	}
	return n, err
}

var errTooLarge = errors.New("catalog: the feed is larger than [feed] max_bytes")

// fail records a sync that failed before the import could start.
func (c *Catalog) fail(source string, err error) error {
	now := c.now().UTC()
	rep := feed.Report{Source: redact.URL(source), Started: now, Finished: now, Failure: redact.Error(err), Errors: []feed.LineError{}}
	if serr := c.st.SaveFeedReport(rep); serr != nil {
		c.log.Error("store the feed report", "err", serr)
	}
	return err
}
