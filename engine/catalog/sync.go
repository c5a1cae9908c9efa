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
	"syscall"
	"time"

	"github.com/shoptrail/shoptrail/engine/feed"
	"github.com/shoptrail/shoptrail/engine/redact"
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

// Syncer fetches the feed from a URL and imports it when it changed.
type Syncer struct {
	c            *Catalog
	o            SyncOptions
	client       *http.Client
	etag, lastMo string
}

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
// (ETag, Last-Modified). It reports whether it imported.
func (s *Syncer) Sync(ctx context.Context) (bool, error) {
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
	if s.etag != "" {
		req.Header.Set("If-None-Match", s.etag)
	}
	if s.lastMo != "" {
		req.Header.Set("If-Modified-Since", s.lastMo)
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
	s.etag, s.lastMo = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
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
