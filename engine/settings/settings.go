// Package settings holds the settings the shop owner changes in the admin
// UI (Settings → Account settings). config.toml gives their first values;
// a change is stored in Badger and wins from then on, across restarts.
package settings

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Account are the account settings.
type Account struct {
	AllowedOrigins    []string      `json:"allowed_origins"`
	SessionTimeout    time.Duration `json:"session_timeout"`
	VisitFromReferrer bool          `json:"visit_from_referrer"`
}

// Validate checks the settings, naming the field at fault.
func (a Account) Validate() error {
	for _, o := range a.AllowedOrigins {
		if err := config.CheckOrigin(o); err != nil {
			return &FieldError{"allowed_origins", err.Error()}
		}
	}
	if a.SessionTimeout < time.Minute || a.SessionTimeout > 30*24*time.Hour {
		return &FieldError{"session_timeout", "must be between 1 minute and 720 hours"}
	}
	return nil
}

// FieldError names the setting at fault.
type FieldError struct{ Field, Message string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Live is the current settings, shared by the components that use them.
type Live struct {
	st       *store.Store
	saveMu   sync.Mutex // one Set at a time: the stored and the applied settings stay the same
	mu       sync.RWMutex
	cur      Account
	onChange []func(Account)
}

const key = "account"

// Load returns the stored settings, or defaults when none were saved.
func Load(st *store.Store, defaults Account) (*Live, error) {
	l := &Live{st: st, cur: defaults}
	var saved Account
	err := st.Setting(key, &saved)
	switch {
	case err == nil:
		l.cur = saved
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return l, nil
}

// Get returns the current settings.
func (l *Live) Get() Account {
	l.mu.RLock()
	defer l.mu.RUnlock()
	a := l.cur
	a.AllowedOrigins = append([]string{}, a.AllowedOrigins...)
	return a
}

// OnChange registers fn, called with the settings now and after every change.
func (l *Live) OnChange(fn func(Account)) {
	l.mu.Lock()
	l.onChange = append(l.onChange, fn)
	cur := l.cur
	l.mu.Unlock()
	fn(cur)
}

// Set validates, stores and applies new settings.
func (l *Live) Set(a Account) error {
	for i, o := range a.AllowedOrigins {
		a.AllowedOrigins[i] = strings.TrimSuffix(strings.TrimSpace(o), "/")
	}
	if err := a.Validate(); err != nil {
		return err
	}
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	if err := l.st.PutSetting(key, a); err != nil {
		return err
	}
	l.mu.Lock()
	l.cur = a
	fns := append([]func(Account){}, l.onChange...)
	l.mu.Unlock()
	for _, fn := range fns {
		fn(a)
	}
	return nil
}

// OriginAllowed reports whether a browser origin may send events.
func (l *Live) OriginAllowed(origin string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, o := range l.cur.AllowedOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}
