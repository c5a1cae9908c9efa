// Package admin guards the admin UI: the one admin account, created on
// first run with a one-time setup token; sign-in with throttling; sessions
// with idle and absolute timeouts, stored hashed.
package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/shoptrail/shoptrail/engine/store"
)

// Errors.
var (
	ErrSetupDone    = errors.New("admin: the admin account exists already")
	ErrBadToken     = errors.New("admin: the setup token is wrong")
	ErrBadLogin     = errors.New("admin: wrong username or password")
	ErrThrottled    = errors.New("admin: too many failed sign-ins; wait a few minutes")
	ErrNoSession    = errors.New("admin: not signed in")
	ErrWeakPassword = fmt.Errorf("admin: the password needs at least %d characters", MinPassword)
	ErrBadUsername  = errors.New("admin: the username needs 1 to 64 characters without spaces")
	errLongPassword = errors.New("admin: the password may have at most 72 bytes")
	// ErrCommonPassword means the password is (or is built on) one of the
	// passwords tried first by anyone guessing.
	ErrCommonPassword = errors.New("admin: this password is one of the most common passwords (or one with digits or signs added); choose another")
)

// Session and throttling limits.
const (
	sessionIdle      = 2 * time.Hour
	sessionAbsolute  = 24 * time.Hour
	failureWindow    = 15 * time.Minute
	maxFailures      = 5
	maxFailuresTotal = 50 // per window, from all addresses: a distributed guess is slowed too
)

// MinPassword is the shortest password accepted.
const MinPassword = 10

// Guard holds the setup token and the sign-in throttle.
type Guard struct {
	st   *store.Store
	log  *slog.Logger
	now  func() time.Time
	cost int // bcrypt cost

	setupToken string // "" once the account exists

	mu       sync.Mutex
	failures map[string][]attempt // by client address
	all      []attempt
	nextID   uint64
}

// attempt is a sign-in counted against the throttle: reserved before the
// password is hashed, kept when it failed, given back when it succeeded.
type attempt struct {
	at time.Time
	id uint64
}

// DefaultCost is the bcrypt cost of the admin password: about 0.25 s per
// sign-in on one core of this project's machines.
const DefaultCost = 12

// New returns the guard. Before setup it makes a one-time setup token.
// cost is the bcrypt cost for the password (DefaultCost; tests use less).
func New(st *store.Store, log *slog.Logger, now func() time.Time, cost int) (*Guard, error) {
	g := &Guard{st: st, log: log, now: now, cost: cost, failures: map[string][]attempt{}}
	if _, err := st.Admin(); errors.Is(err, store.ErrNotFound) {
		g.setupToken = randomToken(18)
	} else if err != nil {
		return nil, err
	}
	return g, nil
}

// SetupToken is the one-time token, "" once the admin account exists.
func (g *Guard) SetupToken() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.setupToken
}

// NeedsSetup reports whether the admin account is still to be created.
func (g *Guard) NeedsSetup() bool { return g.SetupToken() != "" }

// Setup creates the admin account with the setup token; the token then
// stops working.
func (g *Guard) Setup(token, username, password string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.setupToken == "" {
		return ErrSetupDone
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(g.setupToken)) != 1 {
		return ErrBadToken
	}
	if err := checkCredentials(username, password); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), g.cost)
	if err != nil {
		return err
	}
	err = g.st.CreateAdmin(store.AdminAccount{Username: username, Hash: hash, CreatedAt: g.now().UTC()})
	if errors.Is(err, store.ErrExists) {
		return ErrSetupDone
	}
	if err != nil {
		return err
	}
	g.setupToken = ""
	return nil
}

func checkCredentials(username, password string) error {
	if username == "" || len(username) > 64 || strings.ContainsAny(username, " \t\r\n") || !utf8.ValidString(username) {
		return ErrBadUsername
	}
	if utf8.RuneCountInString(password) < MinPassword {
		return ErrWeakPassword
	}
	if len(password) > 72 {
		return errLongPassword
	}
	if isCommon(password) {
		return ErrCommonPassword
	}
	return nil
}

//go:embed common-passwords.txt
var commonPasswordsTxt string

// commonPasswords is the embedded list as a set, built at first use.
var commonPasswords = sync.OnceValue(func() map[string]bool {
	set := map[string]bool{}
	for line := range strings.Lines(commonPasswordsTxt) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			set[line] = true
		}
	}
	return set
})

// isCommon reports whether a password is on the list of common passwords,
// whatever its case, also with digits, signs or spaces around it
// ("Dragon2024!"), or is made of fewer than 4 different characters.
func isCommon(password string) bool {
	l := strings.ToLower(password)
	set := commonPasswords()
	if set[l] {
		return true
	}
	base := strings.TrimFunc(l, func(r rune) bool { return !unicode.IsLetter(r) })
	if utf8.RuneCountInString(base) >= 4 && set[base] {
		return true
	}
	distinct := map[rune]bool{}
	for _, r := range l {
		distinct[r] = true
	}
	return len(distinct) < 4
}

// Login checks the credentials and starts a session: it returns the new
// session id for the cookie. Failed attempts are throttled per client
// address and in total.
//
// The attempt is counted (reserved) before the password is hashed, under the
// same lock as the check: parallel guesses cannot all pass the check before
// the first one fails, so at most the limit of them is ever evaluated.
func (g *Guard) Login(username, password, client string) (string, error) {
	slot, ok := g.reserve(client)
	if !ok {
		return "", ErrThrottled
	}
	acc, err := g.st.Admin()
	if errors.Is(err, store.ErrNotFound) {
		g.log.Warn("admin sign-in failed", "client", client)
		return "", ErrBadLogin
	}
	if err != nil {
		g.release(client, slot)
		return "", err
	}
	userOK := subtle.ConstantTimeCompare([]byte(username), []byte(acc.Username)) == 1
	passErr := bcrypt.CompareHashAndPassword(acc.Hash, []byte(password)) // always run: no timing hint
	if !userOK || passErr != nil {
		g.log.Warn("admin sign-in failed", "client", client)
		return "", ErrBadLogin
	}
	g.release(client, slot)
	id := randomToken(32)
	now := g.now().UTC()
	if err := g.st.PutAdminSession(hashID(id), store.AdminSession{Username: acc.Username, Created: now, LastSeen: now}, now.Add(sessionAbsolute)); err != nil {
		return "", err
	}
	return id, nil
}

// Check returns the session of a cookie's id, refreshing its idle timer.
func (g *Guard) Check(id string) (store.AdminSession, error) {
	if id == "" {
		return store.AdminSession{}, ErrNoSession
	}
	h := hashID(id)
	sess, err := g.st.AdminSession(h)
	if errors.Is(err, store.ErrNotFound) {
		return sess, ErrNoSession
	}
	if err != nil {
		return sess, err
	}
	now := g.now().UTC()
	if now.Sub(sess.LastSeen) > sessionIdle || now.Sub(sess.Created) > sessionAbsolute {
		g.st.DeleteAdminSession(h)
		return sess, ErrNoSession
	}
	if now.Sub(sess.LastSeen) > time.Minute {
		sess.LastSeen = now
		g.st.PutAdminSession(h, sess, sess.Created.Add(sessionAbsolute))
	}
	return sess, nil
}

// Logout ends the session.
func (g *Guard) Logout(id string) error { return g.st.DeleteAdminSession(hashID(id)) }

// reserve counts an attempt from client if the throttle allows one more:
// the check and the count are one step under the lock.
func (g *Guard) reserve(client string) (uint64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	cut := now.Add(-failureWindow)
	keep := func(ts []attempt) []attempt {
		i := 0
		for i < len(ts) && ts[i].at.Before(cut) {
			i++
		}
		return ts[i:]
	}
	if f := keep(g.failures[client]); len(f) > 0 {
		g.failures[client] = f
	} else {
		delete(g.failures, client) // the map does not grow with every address ever seen
	}
	g.all = keep(g.all)
	if len(g.failures[client]) >= maxFailures || len(g.all) >= maxFailuresTotal {
		return 0, false
	}
	g.nextID++
	a := attempt{at: now, id: g.nextID}
	g.failures[client] = append(g.failures[client], a)
	g.all = append(g.all, a)
	return a.id, true
}

// release gives back the attempt id of a sign-in that succeeded (or could
// not be evaluated): it does not count as a failure.
func (g *Guard) release(client string, id uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	drop := func(ts []attempt) []attempt {
		return slices.DeleteFunc(ts, func(a attempt) bool { return a.id == id })
	}
	g.failures[client] = drop(g.failures[client])
	if len(g.failures[client]) == 0 {
		delete(g.failures, client)
	}
	g.all = drop(g.all)
}

func hashID(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
