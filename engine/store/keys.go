package store

import (
	"encoding/binary"
	"github.com/shoptrail/shoptrail/engine/model"
	"time"
)

// The whole key layout of the Badger database. A key is a readable
// namespace ending in '/', then its parts; numbers and times are big-endian
// so that scans come out in order; a variable-length part that is followed
// by another part ends with a 0x00 byte so that "ab" never matches the
// prefix of "abc". Badger reserves keys starting with "!badger!". A new
// entity type takes a new namespace here, and nothing outside this package
// builds a key.
//
//	meta/schema                         schema version (uint32)
//	meta/admin                          the admin account (JSON)
//	meta/setting/<name>                 a setting changed at run time (JSON)
//	meta/catalogue                      the current catalogue generation (uint64)
//	meta/feed/report                    the report of the last feed import (JSON)
//	meta/projection/<name>              a projection's version and checkpoint
//	meta/dropped                        written when a projection is dropped: its version tells incremental backups to refuse
//	meta/retention                      seq up to which the retention sweeper may have dropped events (uint64)
//	log/<seq>                           event (JSON), the log: the source of truth
//	dedup/browser/<event id>            seq of the event a browser sent with that id; expires after dedupTTL
//	dedup/api/<event id>                the same for events sent with an API key or made by Shoptrail
//	apikey/<sha256 of api key>          API key (JSON)
//	user/<email>                        user attributes set through the Users API (JSON)
//	adminsess/<sha256 of session id>    an admin session (JSON); expires at its absolute timeout
//	product/<generation><product id>    product (JSON) of one catalogue generation
//	catfact/<generation><n, 4 bytes>    a change an import found (a product back in stock, a price
//	                                    drop): an event (JSON) waiting to be recorded in the log;
//	                                    live once meta/catalogue reaches the generation
//	segment/<segment id>                a segment's definition (JSON; engine/segment)
//	mail/ (engine/mail, SpaceMail; not a projection):
//	mail/msg/<id>                       a message of the queue (JSON); ids sort by creation time
//	mail/due/<unix ns, 16 hex><id>      a queued message's next attempt (value: the id)
//	mail/inflight/<id>                  a message handed to a worker; left over at start: "uncertain"
//	mail/idem/<idempotency key>         the message id of a (campaign or automation, recipient)
//	mail/provider/<provider message id> the message id of SES's message id
//	mail/count/<state>                  how many messages are in a state (JSON number)
//	mail/suppress/<email>               a suppressed address (JSON)
//	mail/soft/<email>                   soft bounces in a row (JSON number)
//	mail/audit/<unix ns, 16 hex>        a suppression removed by hand (JSON)
//	mail/link/<link id>                 a tracked link's target (JSON)
//	mail/sns/<SNS MessageId>            an SNS message already handled; expires after 48 h
//	mail/meta/<name>                    the queue's pause, the encrypted settings (JSON)
//	campaign/<campaign id>              onsite campaign (JSON, engine/campaign)
//	mcamp/ (engine/mailcampaign, SpaceMailCampaigns; not a projection):
//	mcamp/c/<campaign id>               an email campaign with its progress (JSON)
//	mcamp/r/<campaign id>/<email>       a recipient of the list fixed when sending started
//	mcamp/cap/<YYYY-MM-DD>/<email>      marketing messages to email that UTC day; expires after 48 h
//	mcamp/t/<template id>               a saved email template (JSON)
//	autom/ (engine/automation, SpaceAutomations; not a projection):
//	autom/def/<name>                    an automation's settings (JSON)
//	autom/due/<unix ns, 16 hex>/<name>/<profile>  a durable timer: a message due (JSON)
//	autom/pending/<name>/<profile>      the due/ key of a profile's waiting timer (exit conditions cancel it)
//	autom/last/<name>/<email>           when the automation last mailed email (cooldown)
//	autom/last/<name>/<email>/<product> back_in_stock, price_drop: the cooldown per person and product
//	autom/chg/<name>/<profile>/<product>  back_in_stock, price_drop: a change waiting for the profile's timer
//	proj/emailreports/                  counts of campaigns and automations (engine/mailcampaign)
//	proj/automations/v/<profile>/<product>  product views per person: count, last time; 30 days
//	proj/automations/pv/<product>/<unix ns, 16 hex>/<profile>  a product's recent viewers with an email, by time; 30 days
//	proj/automations/pvn/<product>      how many pv/ keys a product has, and the oldest
//
// Projections, derived from the log; each owns its namespaces, which a
// rebuild of it drops (see Space):
//
//	identity:
//	id/profile/<profile id>             profile (JSON); ids from model.UserProfileID, model.AnonymousProfileID
//	id/anon/<anonymous id>              profile id the anonymous id belongs to
//	id/pevent/<profile id>\0<seq>       the profile's events
//	id/type/<type>\0<seq>               events by type; the value is the event's session id
//	id/session/<session id>             session (JSON)
//	id/client/<client session id>      current session id for a browser's session id
//	id/open/<profile id>                open server-side session id of a profile
//	id/psession/<profile id>\0<session> the profile's sessions
//	id/touch/<profile id>\0<time><seq>  touchpoint (JSON), by time
//	id/order/<order id>                 the order event counted for an order_id (model.OrderRecord)
//	id/orders                           how many orders the shop confirmed through the API (uint64)
//	products (engine/catalog):
//	cooc/viewed/<product id>\0<id>      how often the two were viewed in one session (uint64)
//	cooc/bought/<product id>\0<id>      how often the two were bought in one order (uint64)
//	cooc/unknown/<product id>           events naming a product ID the catalogue lacks (uint64)
//	cooc/session/<session id>           products viewed in a session (JSON list)
//	rollups (engine/report):
//	rollup/day/<YYYY-MM-DD>             the day's totals (JSON): events, sessions, orders, revenue, visitors (sketch)
//	rollup/order/<order id>             the order event counted for an order_id (model.OrderRecord)
//	rollup/orders                       how many orders the shop confirmed through the API (uint64)
//	any other projection:
//	proj/<name>/<key>                   what the projection keeps (Tx.Get, Tx.Set, Tx.Scan)
const (
	nsMeta       ns = "meta/"
	nsSetting    ns = "meta/setting/"
	nsProjection ns = "meta/projection/"
	nsEvent      ns = "log/"
	nsDedup      ns = "dedup/"
	nsAPIKey     ns = "apikey/"
	nsUser       ns = "user/"
	nsAdminSess  ns = "adminsess/"
	nsProduct    ns = "product/"
	nsCampaign   ns = "campaign/"
	nsSegment    ns = "segment/"
	nsCatFact    ns = "catfact/"

	nsProfile    ns = "id/profile/"
	nsAnon       ns = "id/anon/"
	nsProfileEv  ns = "id/pevent/"
	nsTypeEv     ns = "id/type/"
	nsSession    ns = "id/session/"
	nsClientSess ns = "id/client/"
	nsOpenSess   ns = "id/open/"
	nsProfSess   ns = "id/psession/"
	nsTouch      ns = "id/touch/"
	nsOrder      ns = "id/order/"

	nsViewedWith  ns = "cooc/viewed/"
	nsBoughtWith  ns = "cooc/bought/"
	nsUnknownPID  ns = "cooc/unknown/"
	nsSessionProd ns = "cooc/session/"

	nsRollup      ns = "rollup/day/"
	nsRollupOrder ns = "rollup/order/"

	nsProj ns = "proj/"
)

// Order books: the orders a projection counted, one record per order_id.
var (
	IdentityOrders = OrderBook{nsOrder, []byte("id/orders")}
	RollupOrders   = OrderBook{nsRollupOrder, []byte("rollup/orders")}
)

// Spaces of the projections: what each owns and a rebuild drops.
var (
	SpaceIdentity = Space{"id/"}
	SpaceProducts = Space{"cooc/"}
	SpaceRollups  = Space{"rollup/"}
)

// Space is a namespace of keys that one projection owns.
type Space struct{ prefix string }

// ProjectionSpace is the space of a projection that keeps its data through
// Tx.Get, Tx.Set and Tx.Scan.
func ProjectionSpace(name string) Space { return Space{string(nsProj) + name + "/"} }

func (sp Space) key(k string) []byte { return []byte(sp.prefix + k) }

// Dedup namespaces: ids sent by browsers never collide with the shop's.
const (
	dedupBrowser = "browser/"
	dedupAPI     = "api/"
)

// dedupTTL is how long an event id is remembered for idempotent retries.
const dedupTTL = 8 * 24 * time.Hour

var (
	keySchema     = nsMeta.key("schema")
	keyAdmin      = nsMeta.key("admin")
	keyCatalogue  = nsMeta.key("catalogue")
	keyFeedReport = nsMeta.key("feed/report")
	keyDropped    = nsMeta.key("dropped")
	keyRetention  = nsMeta.key("retention")
)

// ns is a key namespace.
type ns string

func (n ns) prefix() []byte { return []byte(n) }

// key is the namespace followed by parts separated by 0x00.
func (n ns) key(parts ...string) []byte {
	size := len(n)
	for _, s := range parts {
		size += len(s) + 1
	}
	k := make([]byte, 0, size)
	k = append(k, n...)
	for i, s := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, s...)
	}
	return k
}

// sub is the prefix of every key below one variable-length part: n<s>\0.
func (n ns) sub(s string) []byte { return append(n.key(s), 0) }

func generationPrefix(gen uint64) []byte {
	return binary.BigEndian.AppendUint64(nsProduct.prefix(), gen)
}

func productKey(gen uint64, id string) []byte { return append(generationPrefix(gen), id...) }

func factPrefix(gen uint64) []byte { return binary.BigEndian.AppendUint64(nsCatFact.prefix(), gen) }

func factKey(gen uint64, n uint32) []byte { return binary.BigEndian.AppendUint32(factPrefix(gen), n) }

func eventKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nsEvent.prefix(), seq) }

func seqOfEventKey(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(nsEvent):]) }

func dedupKey(via, id string) []byte {
	if via == model.ViaBrowser {
		return nsDedup.key(dedupBrowser + id)
	}
	return nsDedup.key(dedupAPI + id)
}

func profileEventKey(profileID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nsProfileEv.sub(profileID), seq)
}

func typeEventKey(typ string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nsTypeEv.sub(typ), seq)
}

func profileSessionKey(profileID, sessionID string) []byte {
	return append(nsProfSess.sub(profileID), sessionID...)
}

func touchpointKey(profileID string, t time.Time, seq uint64) []byte {
	k := binary.BigEndian.AppendUint64(nsTouch.sub(profileID), uint64(t.UnixNano()))
	return binary.BigEndian.AppendUint64(k, seq)
}

// lastUint64 reads the big-endian seq that ends an index key.
func lastUint64(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(k)-8:]) }
