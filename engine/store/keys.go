package store

import (
	"encoding/binary"
	"time"
)

// The whole key layout of the Badger database. Every key starts with a
// one-byte prefix and a '/', then its parts; numbers and times are
// big-endian so that scans come out in order; a variable-length part that is
// followed by another part ends with a 0x00 byte so that "u:ab" never matches
// the prefix of "u:abc". Badger reserves keys starting with "!badger!".
//
//	m/schema                          schema version (uint32)
//	m/checkpoint                      last event seq folded by the projection (uint64)
//	m/setting/<name>                  a setting changed at run time (JSON)
//	e/<seq>                           event (JSON), the log: the source of truth
//	i/<event id>                      seq of the event with that id; expires after dedupTTL
//	k/<sha256 of api key>             API key (JSON)
//	u/<email>                         user attributes set through the Users API (JSON)
//	m/admin                           the admin account (JSON)
//	A/<sha256 of session id>          an admin session (JSON); expires at its absolute timeout
//	m/catalogue                       the current catalogue generation (uint64)
//	m/feed/report                     the report of the last feed import (JSON)
//	g/<generation><product id>        product (JSON) of one catalogue generation
//
// Projections, derived from the log and dropped by Rebuild:
//
//	p/<profile id>                    profile (JSON); ids are "a:<anonymous id>" or "u:<email>"
//	a/<anonymous id>                  profile id the anonymous id belongs to
//	x/<profile id>\0<seq>             the profile's events
//	y/<type>\0<seq>                   events by type
//	s/<session id>                    session (JSON)
//	c/<client session id>             current session id for a browser's session id
//	o/<profile id>                    open server-side session id of a profile
//	q/<profile id>\0<session id>      the profile's sessions
//	t/<profile id>\0<time><seq>       touchpoint (JSON), by time
//	v/<product id>\0<product id>      how often the two were viewed in one session (uint64)
//	b/<product id>\0<product id>      how often the two were bought in one order (uint64)
//	n/<product id>                    events naming a product ID the catalogue lacks (uint64)
//	r/<YYYY-MM-DD>                    the day's totals (JSON): events, sessions, orders, revenue, visitors (sketch)
const (
	pMeta       = 'm'
	pEvent      = 'e'
	pEventID    = 'i'
	pAPIKey     = 'k'
	pUser       = 'u'
	pProduct    = 'g'
	pAdminSess  = 'A'
	pProfile    = 'p'
	pAnon       = 'a'
	pProfileEv  = 'x'
	pTypeEv     = 'y'
	pSession    = 's'
	pClientSess = 'c'
	pOpenSess   = 'o'
	pProfSess   = 'q'
	pTouch      = 't'
	pViewedWith = 'v'
	pBoughtWith = 'b'
	pUnknownPID = 'n'
	pRollup     = 'r'
)

// projectionPrefixes are dropped by Rebuild, together with the checkpoint.
var projectionPrefixes = []byte{pProfile, pAnon, pProfileEv, pTypeEv, pSession, pClientSess, pOpenSess, pProfSess, pTouch,
	pViewedWith, pBoughtWith, pUnknownPID, pRollup}

// dedupTTL is how long an event id is remembered for idempotent retries.
const dedupTTL = 8 * 24 * time.Hour

var (
	keySchema     = []byte("m/schema")
	keyCheckpoint = []byte("m/checkpoint")
	keyCatalogue  = []byte("m/catalogue")
	keyFeedReport = []byte("m/feed/report")
	keyAdmin      = []byte("m/admin")
)

func generationPrefix(gen uint64) []byte { return binary.BigEndian.AppendUint64(prefix(pProduct), gen) }

func productKey(gen uint64, id string) []byte { return append(generationPrefix(gen), id...) }

func prefix(p byte) []byte { return []byte{p, '/'} }

func key(p byte, parts ...string) []byte {
	n := 2
	for _, s := range parts {
		n += len(s) + 1
	}
	k := make([]byte, 0, n)
	k = append(k, p, '/')
	for i, s := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, s...)
	}
	return k
}

// sub is the prefix of every key below one variable-length part: p/<s>\0.
func sub(p byte, s string) []byte { return append(key(p, s), 0) }

func settingKey(name string) []byte { return []byte("m/setting/" + name) }

func eventKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(prefix(pEvent), seq) }

func seqOfEventKey(k []byte) uint64 { return binary.BigEndian.Uint64(k[2:]) }

func profileEventKey(profileID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(sub(pProfileEv, profileID), seq)
}

func typeEventKey(typ string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(sub(pTypeEv, typ), seq)
}

func profileSessionKey(profileID, sessionID string) []byte {
	return append(sub(pProfSess, profileID), sessionID...)
}

func touchpointKey(profileID string, t time.Time, seq uint64) []byte {
	k := binary.BigEndian.AppendUint64(sub(pTouch, profileID), uint64(t.UnixNano()))
	return binary.BigEndian.AppendUint64(k, seq)
}

// lastUint64 reads the big-endian seq that ends an index key.
func lastUint64(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(k)-8:]) }
