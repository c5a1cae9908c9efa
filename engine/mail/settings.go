package mail

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Settings are what Settings → Email edits; [email] gives their first
// values, and once saved the stored ones win, across restarts. The secrets
// (SES's secret key, the SMTP password) are stored encrypted with a key
// kept in the data directory, and never shown again.
type Settings struct {
	From      string       `json:"from"`
	ReplyTo   string       `json:"reply_to"`
	PublicURL string       `json:"public_url"`
	SES       SESSettings  `json:"ses"`
	SMTP      SMTPSettings `json:"smtp"`
}

// SESSettings configure Amazon SES.
type SESSettings struct {
	Region           string `json:"region"`
	AccessKeyID      string `json:"access_key_id"`
	SecretAccessKey  string `json:"-"`
	ConfigurationSet string `json:"configuration_set"`
	Endpoint         string `json:"endpoint"`
}

// SMTPSettings configure the SMTP fallback.
type SMTPSettings struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username"`
	Password string `json:"-"`
	TLS      string `json:"tls"`
	// tlsConfig lets tests trust their server's certificate.
	tlsConfig *tls.Config
}

// envelopeFrom is the bare address of From.
func (s Settings) envelopeFrom() string {
	if a, err := mail.ParseAddress(s.From); err == nil {
		return a.Address
	}
	return s.From
}

// Validate checks the settings with the same rules as [email].
func (s Settings) Validate() error {
	c := config.Default().Email
	c.From, c.ReplyTo, c.PublicURL = s.From, s.ReplyTo, s.PublicURL
	c.SES = config.EmailSES{Region: s.SES.Region, AccessKeyID: s.SES.AccessKeyID, SecretAccessKey: s.SES.SecretAccessKey,
		ConfigurationSet: s.SES.ConfigurationSet, Endpoint: s.SES.Endpoint}
	c.SMTP = config.EmailSMTP{Host: s.SMTP.Host, Port: s.SMTP.Port, Username: s.SMTP.Username, Password: s.SMTP.Password, TLS: s.SMTP.TLS}
	cfg := config.Default()
	cfg.Email = c
	err := cfg.Validate()
	if err == nil {
		if cs := s.SES.ConfigurationSet; cs != "" && (len(cs) > 64 || tagUnsafe.MatchString(cs)) {
			return &FieldError{Field: "ses.configuration_set", Message: "letters, digits, _ and - only, at most 64"}
		}
		return nil
	}
	// the first problem, named by its field
	msg := strings.SplitN(err.Error(), "\n", 2)[0]
	msg = strings.TrimPrefix(msg, "config: email.")
	field, text, _ := strings.Cut(msg, ": ")
	return &FieldError{Field: field, Message: text}
}

func settingsFrom(c config.Email) Settings {
	return Settings{From: c.From, ReplyTo: c.ReplyTo, PublicURL: c.PublicURL,
		SES: SESSettings{Region: c.SES.Region, AccessKeyID: c.SES.AccessKeyID, SecretAccessKey: c.SES.SecretAccessKey,
			ConfigurationSet: c.SES.ConfigurationSet, Endpoint: c.SES.Endpoint},
		SMTP: SMTPSettings{Host: c.SMTP.Host, Port: c.SMTP.Port, Username: c.SMTP.Username, Password: c.SMTP.Password, TLS: c.SMTP.TLS}}
}

// stored is how Settings are kept: the secrets sealed.
type stored struct {
	Settings
	SESSecret    string `json:"ses_secret,omitempty"` // AES-GCM, base64
	SMTPPassword string `json:"smtp_password,omitempty"`
}

const settingsKey = "meta/settings"

type liveSettings struct {
	st        *store.Store
	k         keys
	fallback  string // [http] public_url or the listener
	mu        sync.RWMutex
	cur       Settings
	onChange  func(Settings)
	saveMutex sync.Mutex
}

func loadSettings(st *store.Store, k keys, c config.Email, publicURL string) (*liveSettings, error) {
	l := &liveSettings{st: st, k: k, cur: settingsFrom(c), fallback: publicURL}
	var s stored
	err := st.Read(func(tx *store.Tx) error { return tx.Get(store.SpaceMail, settingsKey, &s) })
	switch {
	case errors.Is(err, store.ErrNotFound):
		return l, nil
	case err != nil:
		return nil, err
	}
	cur := s.Settings
	if cur.SES.SecretAccessKey, err = k.open(s.SESSecret); err != nil {
		return nil, fmt.Errorf("mail: the stored SES secret cannot be decrypted (was %s replaced?): %w", k.path, err)
	}
	if cur.SMTP.Password, err = k.open(s.SMTPPassword); err != nil {
		return nil, fmt.Errorf("mail: the stored SMTP password cannot be decrypted (was %s replaced?): %w", k.path, err)
	}
	l.cur = cur
	return l, nil
}

// Get returns the current settings.
func (l *liveSettings) Get() Settings {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cur
}

// publicURL is where links point, without a trailing slash.
func (l *liveSettings) publicURL() string {
	l.mu.RLock()
	u := l.cur.PublicURL
	if u == "" {
		u = l.fallback
	}
	l.mu.RUnlock()
	return strings.TrimRight(u, "/")
}

// SetDefaultPublicURL sets where links point when neither [email]
// public_url nor [http] public_url is set: the public listener's address.
func (m *Mailer) SetDefaultPublicURL(u string) {
	m.settings.mu.Lock()
	m.settings.fallback = u
	m.settings.mu.Unlock()
}

func (l *liveSettings) save(s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	l.saveMutex.Lock()
	defer l.saveMutex.Unlock()
	sealed := stored{Settings: s}
	var err error
	if sealed.SESSecret, err = l.k.seal(s.SES.SecretAccessKey); err != nil {
		return err
	}
	if sealed.SMTPPassword, err = l.k.seal(s.SMTP.Password); err != nil {
		return err
	}
	if err := l.st.Write(func(tx *store.Tx) error { return tx.Set(store.SpaceMail, settingsKey, sealed) }); err != nil {
		return err
	}
	l.mu.Lock()
	s.SMTP.tlsConfig = l.cur.SMTP.tlsConfig
	l.cur = s
	l.mu.Unlock()
	return nil
}

// Settings returns the current settings. The secrets are in it: callers
// must not show them (SecretSet tells whether one is set).
func (m *Mailer) Settings() Settings { return m.settings.Get() }

// SaveSettings validates and stores new settings and applies them at once.
// An empty secret keeps the stored one unless clear names it ("ses_secret",
// "smtp_password").
func (m *Mailer) SaveSettings(s Settings, clear ...string) error {
	cur := m.settings.Get()
	switch {
	case slices.Contains(clear, "ses_secret"):
		s.SES.SecretAccessKey = ""
	case s.SES.SecretAccessKey == "" && s.SES.AccessKeyID != "":
		s.SES.SecretAccessKey = cur.SES.SecretAccessKey
	}
	switch {
	case slices.Contains(clear, "smtp_password"):
		s.SMTP.Password = ""
	case s.SMTP.Password == "" && s.SMTP.Username != "":
		s.SMTP.Password = cur.SMTP.Password
	}
	if err := m.settings.save(s); err != nil {
		return err
	}
	m.q.configure(m.settings.Get())
	m.q.refreshAccountSoon()
	m.log.Info("email settings changed", "from", s.From, "ses_region", s.SES.Region, "smtp_host", s.SMTP.Host)
	return nil
}

// PublicURL is where the links of messages point.
func (m *Mailer) PublicURL() string { return m.settings.publicURL() }

// keys are the secrets of the mail component, from one random key in a
// file of the data directory: one derived key encrypts the stored
// secrets, others sign tokens.
type keys struct {
	path               string
	seal_, open_       func([]byte) ([]byte, error)
	unsub, pixel, link []byte
	ident              []byte
}

func loadKeys(path string) (keys, error) {
	if path == "" {
		return keys{}, errors.New("mail: no key file")
	}
	master, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		master = make([]byte, 32)
		rand.Read(master)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return keys{}, err
		}
		// written aside and renamed: a crash leaves the old file or the new one
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, master, 0o600); err != nil {
			return keys{}, fmt.Errorf("mail: write %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return keys{}, fmt.Errorf("mail: write %s: %w", path, err)
		}
	} else if err != nil {
		return keys{}, fmt.Errorf("mail: read %s: %w", path, err)
	}
	if len(master) != 32 {
		return keys{}, fmt.Errorf("mail: %s holds %d bytes, not 32: restore it from a backup (it decrypts the stored email secrets)", path, len(master))
	}
	derive := func(purpose string) []byte {
		h := hmac.New(sha256.New, master)
		h.Write([]byte(purpose))
		return h.Sum(nil)
	}
	block, _ := aes.NewCipher(derive("settings"))
	gcm, _ := cipher.NewGCM(block)
	k := keys{path: path, unsub: derive("unsubscribe"), pixel: derive("open"), link: derive("link"), ident: derive("identify")}
	k.seal_ = func(p []byte) ([]byte, error) {
		nonce := make([]byte, gcm.NonceSize())
		rand.Read(nonce)
		return gcm.Seal(nonce, nonce, p, []byte("shoptrail email settings")), nil
	}
	k.open_ = func(c []byte) ([]byte, error) {
		if len(c) < gcm.NonceSize() {
			return nil, errors.New("too short")
		}
		return gcm.Open(nil, c[:gcm.NonceSize()], c[gcm.NonceSize():], []byte("shoptrail email settings"))
	}
	return k, nil
}

func (k keys) seal(secret string) (string, error) {
	if secret == "" {
		return "", nil
	}
	c, err := k.seal_([]byte(secret))
	return base64.StdEncoding.EncodeToString(c), err
}

func (k keys) open(sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	c, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", err
	}
	p, err := k.open_(c)
	return string(p), err
}

// sign is the first 16 bytes of HMAC-SHA256(key, parts), base64url.
func sign(key []byte, parts ...string) string {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

func checkSig(key []byte, sig string, parts ...string) bool {
	return hmac.Equal([]byte(sig), []byte(sign(key, parts...)))
}

// validPublicURL says whether u can prefix links.
func validPublicURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}
