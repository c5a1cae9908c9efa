package mail

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Link is a tracked link's target, stored under its id: /r/{id} redirects
// only to stored targets, never to a URL taken from the request.
type Link struct {
	URL     string `json:"url"`
	Message string `json:"message"`
}

// identifyParam carries the signed token that identifies a shopper's
// browser arriving from a message (see Identify).
const identifyParam = "st_id"

// identifyTTL is how long a message's links identify their recipient.
const identifyTTL = 30 * 24 * time.Hour

var (
	hrefRe = regexp.MustCompile(`(?i)(<a\b[^>]*?\bhref\s*=\s*)("[^"]*"|'[^']*')`)
	urlRe  = regexp.MustCompile(`https?://[^\s<>"')\]]+`)
)

// compose builds the raw MIME message of r for a provider. Marketing
// messages get the unsubscribe headers; their links get UTM tags and the
// identifying token (links to the shop), and through SMTP also the click
// redirect and the open pixel (SES tracks those itself).
func (m *Mailer) compose(r *Record, s Settings, provider string) ([]byte, error) {
	base := m.settings.publicURL()
	htmlBody, text := r.HTML, r.Text
	if !r.Transactional {
		if !validPublicURL(base) {
			return nil, fmt.Errorf("no public URL for the unsubscribe link: set [email] public_url or [http] public_url")
		}
		lt := &linker{m: m, r: r, base: base, track: provider == ProviderSMTP}
		htmlBody = hrefRe.ReplaceAllStringFunc(htmlBody, func(tag string) string {
			sub := hrefRe.FindStringSubmatch(tag)
			quoted := sub[2]
			target := html.UnescapeString(quoted[1 : len(quoted)-1])
			nu, ok := lt.rewrite(target)
			if !ok {
				return tag
			}
			return sub[1] + `"` + html.EscapeString(nu) + `"`
		})
		text = urlRe.ReplaceAllStringFunc(text, func(u string) string {
			if nu, ok := lt.rewrite(u); ok {
				return nu
			}
			return u
		})
		if lt.err != nil {
			return nil, lt.err
		}
		if err := lt.store(); err != nil {
			return nil, err
		}
		if lt.track && htmlBody != "" {
			pixel := `<img src="` + html.EscapeString(base+"/o/"+m.openToken(r.ID)) + `" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px">`
			if i := strings.LastIndex(strings.ToLower(htmlBody), "</body>"); i >= 0 {
				htmlBody = htmlBody[:i] + pixel + htmlBody[i:]
			} else {
				htmlBody += pixel
			}
		}
	}
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return nil, fmt.Errorf("from %q: %w", s.From, err)
	}
	var b bytes.Buffer
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("From", from.String())
	h("To", "<"+r.To+">")
	if s.ReplyTo != "" {
		if rt, err := mail.ParseAddress(s.ReplyTo); err == nil {
			h("Reply-To", rt.String())
		}
	}
	h("Subject", mime.QEncoding.Encode("utf-8", r.Subject))
	h("Date", m.now().UTC().Format(time.RFC1123Z))
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	h("Message-ID", "<"+r.ID+"@"+domain+">")
	h("MIME-Version", "1.0")
	if !r.Transactional {
		h("List-Unsubscribe", "<"+base+"/u/"+m.unsubToken(r.ID)+">")
		h("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	h("X-Shoptrail-Message", r.ID)
	part := func(ctype, body string) {
		b.WriteString("Content-Type: " + ctype + "; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		w := quotedprintable.NewWriter(&b)
		w.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")))
		w.Close()
		b.WriteString("\r\n")
	}
	switch {
	case htmlBody != "" && text != "":
		var rnd [12]byte
		rand.Read(rnd[:])
		boundary := "st-" + hex.EncodeToString(rnd[:])
		h("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
		b.WriteString("\r\n--" + boundary + "\r\n")
		part("text/plain", text)
		b.WriteString("--" + boundary + "\r\n")
		part("text/html", htmlBody)
		b.WriteString("--" + boundary + "--\r\n")
	case htmlBody != "":
		part("text/html", htmlBody)
	default:
		part("text/plain", text)
	}
	return b.Bytes(), nil
}

// linker rewrites the links of one message.
type linker struct {
	m     *Mailer
	r     *Record
	base  string
	track bool // through /r/{id}
	n     int
	links map[string]Link
	err   error
}

func (lt *linker) rewrite(target string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(target))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false // mailto:, tel:, anchors, relative links: left alone
	}
	if strings.HasPrefix(target, lt.base+"/u/") || strings.HasPrefix(target, lt.base+"/r/") {
		return "", false
	}
	if lt.shopHost(u.Hostname()) {
		q := u.Query()
		set := func(k, v string) {
			if q.Get(k) == "" && v != "" {
				q.Set(k, v)
			}
		}
		set("utm_source", "shoptrail")
		set("utm_medium", "email")
		campaign := lt.r.Campaign
		if campaign == "" {
			campaign = lt.r.Automation
		}
		set("utm_campaign", campaign)
		q.Set(identifyParam, lt.m.identifyToken(lt.r.ID))
		u.RawQuery = q.Encode()
	}
	final := u.String()
	if !lt.track {
		return final, true
	}
	id := sign(lt.m.keys.link, lt.r.ID, strconv.Itoa(lt.n))
	lt.n++
	if lt.links == nil {
		lt.links = map[string]Link{}
	}
	lt.links[id] = Link{URL: final, Message: lt.r.ID}
	return lt.base + "/r/" + id, true
}

func (lt *linker) shopHost(host string) bool {
	if lt.m.hosts == nil {
		return true
	}
	host = strings.ToLower(host)
	return slices.ContainsFunc(lt.m.hosts(), func(h string) bool {
		h = strings.ToLower(h)
		return host == h || strings.HasSuffix(host, "."+h)
	})
}

// store writes the links (their ids derive from the message and the link's
// place in it: a retry writes the same keys).
func (lt *linker) store() error {
	if len(lt.links) == 0 {
		return nil
	}
	return lt.m.st.Write(func(tx *store.Tx) error {
		for id, l := range lt.links {
			if err := tx.Set(store.SpaceMail, "link/"+id, l); err != nil {
				return err
			}
		}
		return nil
	})
}

// Tokens: a message id and a signature (HMAC with a key of the data
// directory), base64url. They reveal nothing about the recipient.
func (m *Mailer) unsubToken(id string) string { return id + "." + sign(m.keys.unsub, id) }
func (m *Mailer) openToken(id string) string  { return id + "." + sign(m.keys.pixel, id) }

func (m *Mailer) identifyToken(id string) string {
	exp := strconv.FormatInt(m.now().Add(identifyTTL).Unix(), 36)
	return id + "." + exp + "." + sign(m.keys.ident, id, exp)
}

// tokenID checks a token "<id>.<sig>" and returns the id.
func tokenID(key []byte, tok string) (string, bool) {
	id, sig, ok := strings.Cut(tok, ".")
	if !ok || !validID(id) || !checkSig(key, sig, id) {
		return "", false
	}
	return id, true
}

// Identify returns the recipient of the message whose link carried token
// (the st_id parameter): a shop page can then tell Shoptrail who the
// shopper is on this browser (cross-device stitching). Tokens expire after
// 30 days.
func (m *Mailer) Identify(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || !validID(parts[0]) || !checkSig(m.keys.ident, parts[2], parts[0], parts[1]) {
		return "", ErrBadToken
	}
	exp, err := strconv.ParseInt(parts[1], 36, 64)
	if err != nil || m.now().Unix() > exp {
		return "", ErrBadToken
	}
	r, err := m.Get(parts[0])
	if err != nil {
		return "", ErrBadToken
	}
	return r.To, nil
}

// event is an email_* event of r's recipient.
func (m *Mailer) event(r *Record, typ, id string, at time.Time, props map[string]any) *model.Event {
	p := map[string]json.RawMessage{}
	put := func(k string, v any) {
		if b, err := json.Marshal(v); err == nil {
			p[k] = b
		}
	}
	put("message_id", r.ID)
	put("subject", r.Subject)
	if r.Campaign != "" {
		put("campaign", r.Campaign)
	}
	if r.Automation != "" {
		put("automation", r.Automation)
	}
	if r.Transactional {
		put("transactional", true)
	}
	for k, v := range props {
		if v != nil && v != "" {
			put(k, v)
		}
	}
	return &model.Event{ID: id, Type: typ, Email: r.To, Time: at.UTC(), Props: p}
}
