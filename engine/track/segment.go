package track

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

// Segment's HTTP Tracking API (POST /v1/batch, /v1/track, ...) is what
// Segment's server SDKs speak. DecodeSegment turns its messages into the
// events of a Request, which Receive validates and stores like any other
// batch from an API key: the same normalisation, the same aliases, the same
// dedup space, the same group commit.

// Segment call types: the last element of the route, and a message's "type".
const (
	SegmentBatch    = "batch"
	SegmentTrack    = "track"
	SegmentIdentify = "identify"
	SegmentPage     = "page"
	SegmentScreen   = "screen"
	SegmentGroup    = "group"
	SegmentAlias    = "alias"
)

// SegmentCalls are the single-message calls; SegmentBatch takes any of them.
var SegmentCalls = []string{SegmentTrack, SegmentIdentify, SegmentPage, SegmentScreen, SegmentGroup, SegmentAlias}

// Segment's documented limits: 32 KB per message, 500 KB per batch request.
const (
	SegmentMaxMessageBytes = 32 << 10
	SegmentMaxBatchBytes   = 500 << 10
)

// UserIDPrefix starts the anonymous id that stands for a Segment userId that
// is not an email address: userId "42" is anonymous_id "uid:42". Only API-key
// callers may send such ids; browsers cannot claim a shop's user.
const UserIDPrefix = "uid:"

// The event types of the Segment calls other than track.
const (
	SegmentIdentifyType = "identify"
	SegmentScreenType   = "screen_view"
	SegmentGroupType    = "group"
	SegmentAliasType    = "alias"
)

// useFastSegment turns fastSegmentBatch on (FuzzFastSegment compares).
var useFastSegment = true

// segment is what DecodeSegment knows of each event of a Request, besides
// the event itself.
type segment struct {
	prefix string       // "batch[%d]." for /v1/batch, "" for single calls
	events []segEvent   // by event index
	errs   []FieldError // messages that did not decode, by message index
}

type segEvent struct {
	msg       int        // the message's index in the request
	sentAt    *time.Time // the message's own sentAt
	userAgent string     // context.userAgent: the shopper's browser
	derived   string     // the id of the message's main event, for the link event
	fields    segFields
}

// segFields names the message's fields that an event's fields came from,
// for the errors of normalise.
type segFields struct {
	id, typ, anon, email, url, referrer, time, props string
}

// segMessage is one Segment message. The fields are kept raw so that a
// value of the wrong type is reported by its own name; the objects are
// typed (their leaves raw), so that json.Unmarshal names the one that is
// not an object, and only the few fields of context that matter are read.
type segMessage struct {
	Type              json.RawMessage            `json:"type"`
	MessageID         json.RawMessage            `json:"messageId"`
	AnonymousID       json.RawMessage            `json:"anonymousId"`
	UserID            json.RawMessage            `json:"userId"`
	PreviousID        json.RawMessage            `json:"previousId"`
	GroupID           json.RawMessage            `json:"groupId"`
	Event             json.RawMessage            `json:"event"`
	Name              json.RawMessage            `json:"name"`
	Category          json.RawMessage            `json:"category"`
	Properties        map[string]json.RawMessage `json:"properties"`
	Traits            map[string]json.RawMessage `json:"traits"`
	Context           *segContext                `json:"context"`
	Timestamp         json.RawMessage            `json:"timestamp"`
	OriginalTimestamp json.RawMessage            `json:"originalTimestamp"`
	SentAt            json.RawMessage            `json:"sentAt"`
}

// segContext is what Shoptrail reads of a message's context.
type segContext struct {
	Page      *segPage        `json:"page"`
	Campaign  *segCampaign    `json:"campaign"`
	Traits    *segTraits      `json:"traits"`
	UserAgent json.RawMessage `json:"userAgent"`
}

type segPage struct {
	URL      json.RawMessage `json:"url"`
	Referrer json.RawMessage `json:"referrer"`
}

type segCampaign struct {
	Name    json.RawMessage `json:"name"`
	Source  json.RawMessage `json:"source"`
	Medium  json.RawMessage `json:"medium"`
	Term    json.RawMessage `json:"term"`
	Content json.RawMessage `json:"content"`
}

type segTraits struct {
	Email json.RawMessage `json:"email"`
}

// under fills what c lacks from a batch's shared context.
func (c *segContext) under(shared *segContext) *segContext {
	switch {
	case shared == nil:
		return c
	case c == nil:
		return shared
	}
	out := *c
	if out.Page == nil {
		out.Page = shared.Page
	}
	if out.Campaign == nil {
		out.Campaign = shared.Campaign
	}
	if out.Traits == nil {
		out.Traits = shared.Traits
	}
	if out.UserAgent == nil {
		out.UserAgent = shared.UserAgent
	}
	return &out
}

// DecodeSegment decodes the body of a call to Segment's HTTP Tracking API
// into r: call is SegmentBatch or one of SegmentCalls, body the
// uncompressed JSON. The body's size is the caller's to bound (a single
// call is one message: SegmentMaxMessageBytes; a batch SegmentMaxBatchBytes).
//
// A message that does not decode (a field of the wrong type, a message over
// 32 KB, an unknown type) is reported by Receive with the others' errors,
// and the rest are stored. A body that is not a JSON object, or a batch
// without a "batch" array, is a *BodyError; more than wire.MaxEvents
// messages is ErrTooManyEvs, none is ErrNoEvents.
//
// The mapping (README, "Send events from your backend with Segment's SDKs"):
// messageId is the event id (in the API's dedup space); userId and
// anonymousId are the identity (userId "42" becomes anonymous_id "uid:42",
// an email userId the email); traits.email (identify) or
// context.traits.email is the email; context.page gives url and referrer;
// context.campaign the utm tags of a page; context.userAgent the shopper's
// user agent; timestamp is corrected for the sender's clock with sentAt.
func DecodeSegment(call string, body []byte, r *Request) error {
	body = r.repair(body)
	seg := &segment{}
	r.seg = seg
	var msgs []json.RawMessage
	var shared *segContext // a batch's context, under each message's
	if call == SegmentBatch && useFastSegment && json.Valid(body) {
		// the usual batch, decoded in one pass after one validation
		var batch []segMessage
		var sentAtRaw json.RawMessage
		if fastSegmentBatch(body, &batch, &sentAtRaw) && len(batch) > 0 && len(batch) <= wire.MaxEvents {
			if t, fe := segTime(sentAtRaw, "sentAt"); fe == nil {
				seg.prefix, r.SentAt = "batch[%d].", t
				for i := range batch {
					if fe := seg.add(r, i, call, &batch[i], nil); fe != nil {
						fe.Index = i
						seg.errs = append(seg.errs, *fe)
					}
				}
				return nil
			}
		}
	}
	if call == SegmentBatch {
		seg.prefix = "batch[%d]."
		var top struct {
			Batch   []json.RawMessage `json:"batch"`
			SentAt  json.RawMessage   `json:"sentAt"`
			Context *segContext       `json:"context"`
		}
		if err := decodeObject(body, &top); err != nil {
			return err
		}
		msgs = top.Batch
		if len(msgs) == 0 {
			return ErrNoEvents
		}
		if len(msgs) > wire.MaxEvents {
			return ErrTooManyEvs
		}
		t, fe := segTime(top.SentAt, "sentAt")
		if fe != nil {
			return &BodyError{Field: "sentAt", Message: fe.Message}
		}
		r.SentAt, shared = t, top.Context
	} else {
		msgs = []json.RawMessage{body}
	}
	for i, raw := range msgs {
		if len(raw) > SegmentMaxMessageBytes {
			seg.errs = append(seg.errs, FieldError{Index: i, Code: CodeTooLong,
				Message: fmt.Sprintf("a message is larger than %d KB", SegmentMaxMessageBytes>>10)})
			continue
		}
		var m segMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			var syn *json.SyntaxError
			if call != SegmentBatch && errors.As(err, &syn) {
				return &BodyError{Field: "body", Offset: syn.Offset,
					Message: fmt.Sprintf("the body is not JSON: %v (at byte %d)", err, syn.Offset)}
			}
			fe := FieldError{Index: i, Code: CodeInvalid, Message: "a message must be a JSON object"}
			var typ *json.UnmarshalTypeError
			if errors.As(err, &typ) && typ.Field != "" {
				fe.Field, fe.Message = typ.Field, typ.Field+" must be an object"
			}
			if call != SegmentBatch && fe.Field == "" {
				return &BodyError{Field: "body", Message: "the body must be a JSON object"}
			}
			seg.errs = append(seg.errs, fe)
			continue
		}
		if fe := seg.add(r, i, call, &m, shared); fe != nil {
			fe.Index = i
			seg.errs = append(seg.errs, *fe)
		}
	}
	return nil
}

// decodeObject decodes a body that must be one JSON object.
func decodeObject(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &syn):
		return &BodyError{Field: "body", Offset: syn.Offset,
			Message: fmt.Sprintf("the body is not JSON: %v (at byte %d)", err, syn.Offset)}
	case errors.As(err, &typ) && typ.Field == "":
		return &BodyError{Field: "body", Message: "the body must be a JSON object"}
	case errors.As(err, &typ) && typ.Field == "batch":
		return &BodyError{Field: "batch", Message: "batch must be an array of message objects"}
	case errors.As(err, &typ):
		return &BodyError{Field: typ.Field, Message: typ.Field + " must be an object"}
	default:
		return &BodyError{Field: "body", Message: "the body is not a Segment message: " + err.Error()}
	}
}

// add appends the events of message i to r, or returns why it cannot.
func (seg *segment) add(r *Request, i int, call string, m *segMessage, shared *segContext) *FieldError {
	kind := call
	if call == SegmentBatch {
		t, fe := segString(m.Type, "type")
		if fe != nil {
			return fe
		}
		kind = strings.ToLower(t)
		if kind == "" {
			return &FieldError{Field: "type", Code: CodeRequired, Message: "type is required: one of " + strings.Join(SegmentCalls, ", ")}
		}
		if !isSegmentCall(kind) {
			return &FieldError{Field: "type", Code: CodeInvalid, Message: fmt.Sprintf("type %.40q is not one of %s", t, strings.Join(SegmentCalls, ", "))}
		}
	}
	ctx := m.Context.under(shared)
	if ctx == nil {
		ctx = &segContext{}
	}
	var fe *FieldError
	var strs struct{ id, anon, user, prev, group, event, name, category string }
	for _, f := range []struct {
		dst   *string
		raw   json.RawMessage
		field string
	}{
		{&strs.id, m.MessageID, "messageId"}, {&strs.anon, m.AnonymousID, "anonymousId"},
		{&strs.user, m.UserID, "userId"}, {&strs.prev, m.PreviousID, "previousId"},
		{&strs.group, m.GroupID, "groupId"}, {&strs.event, m.Event, "event"},
		{&strs.name, m.Name, "name"}, {&strs.category, m.Category, "category"},
	} {
		if *f.dst, fe = segString(f.raw, f.field); fe != nil {
			return fe
		}
	}
	ev := wire.Event{ID: strs.id, AnonymousID: strs.anon}
	fields := segFields{id: "messageId", anon: "anonymousId", time: "timestamp", typ: "type"}

	// the time, corrected for the sender's clock with sentAt (Receive)
	if ev.Time, fe = segTime(m.Timestamp, "timestamp"); fe != nil {
		return fe
	}
	if ev.Time == nil {
		if ev.Time, fe = segTime(m.OriginalTimestamp, "originalTimestamp"); fe != nil {
			return fe
		}
		fields.time = "originalTimestamp"
	}
	sentAt, fe := segTime(m.SentAt, "sentAt")
	if fe != nil {
		return fe
	}

	// what the event is, and its properties
	props, propsField := m.Properties, "properties"
	switch kind {
	case SegmentTrack:
		ev.Type, fields.typ = strs.event, "event"
		if ev.Type == "" {
			return &FieldError{Field: "event", Code: CodeRequired, Message: "a track call needs event, e.g. \"Order Completed\""}
		}
	case SegmentPage:
		ev.Type = "page_view"
	case SegmentScreen:
		ev.Type = SegmentScreenType
	case SegmentIdentify:
		ev.Type, props, propsField = SegmentIdentifyType, m.Traits, "traits"
	case SegmentGroup:
		ev.Type, props, propsField = SegmentGroupType, m.Traits, "traits"
		if strs.group == "" {
			return &FieldError{Field: "groupId", Code: CodeRequired, Message: "a group call needs groupId"}
		}
	case SegmentAlias:
		ev.Type, props = SegmentAliasType, nil
		if strs.prev == "" {
			return &FieldError{Field: "previousId", Code: CodeRequired, Message: "an alias call needs previousId"}
		}
		if strs.user == "" {
			return &FieldError{Field: "userId", Code: CodeRequired, Message: "an alias call needs userId"}
		}
	}
	ev.Props, fields.props = props, propsField
	setProp := func(k, v string) {
		if v == "" {
			return
		}
		if ev.Props == nil {
			ev.Props = map[string]json.RawMessage{}
		}
		if _, ok := ev.Props[k]; !ok {
			ev.Props[k] = jsonString(v)
		}
	}
	switch kind {
	case SegmentPage, SegmentScreen:
		setProp("name", strs.name)
		setProp("category", strs.category)
	case SegmentGroup:
		setProp("group_id", strs.group)
	case SegmentAlias:
		setProp("previous_id", strs.prev)
		setProp("user_id", strs.user)
	}

	// where it happened
	var pageURL, pageRef json.RawMessage
	if ctx.Page != nil {
		pageURL, pageRef = ctx.Page.URL, ctx.Page.Referrer
	}
	for _, f := range []struct {
		dst, field *string
		key        string
		page       json.RawMessage
	}{{&ev.URL, &fields.url, "url", pageURL}, {&ev.Referrer, &fields.referrer, "referrer", pageRef}} {
		if kind == SegmentPage {
			if s, fe := segString(ev.Props[f.key], "properties."+f.key); fe != nil {
				return fe
			} else if s != "" {
				*f.dst, *f.field = s, "properties."+f.key
				continue
			}
		}
		s, fe := segString(f.page, "context.page."+f.key)
		if fe != nil {
			return fe
		}
		*f.dst, *f.field = s, "context.page."+f.key
	}
	if kind == SegmentPage && ctx.Campaign != nil {
		if ev.URL, fe = withCampaign(ev.URL, ctx); fe != nil {
			return fe
		}
	}
	ua, fe := segString(ctx.UserAgent, "context.userAgent")
	if fe != nil {
		return fe
	}

	// who did it
	var email, emailField string
	type source struct {
		raw   json.RawMessage
		field string
	}
	var sources []source
	if kind == SegmentIdentify {
		sources = append(sources, source{ev.Props["email"], "traits.email"})
	}
	if ctx.Traits != nil {
		sources = append(sources, source{ctx.Traits.Email, "context.traits.email"})
	}
	for _, src := range sources {
		s, fe := segString(src.raw, src.field)
		if fe != nil {
			return fe
		}
		if s != "" {
			email, emailField = s, src.field
			break
		}
	}
	userIsEmail := false
	if strings.Contains(strs.user, "@") {
		if _, err := NormaliseEmail(strs.user); err == nil {
			userIsEmail = true
			if email == "" {
				email, emailField = strs.user, "userId"
			}
		}
	}
	// the other id the message names: an alias's previousId, or the
	// anonymousId of a call that also has a userId
	other, otherField := strs.anon, "anonymousId"
	if kind == SegmentAlias {
		other, otherField = strs.prev, "previousId"
	}
	switch {
	case strs.user != "" && !userIsEmail:
		if len(strs.user) > wire.MaxIDLen-len(UserIDPrefix) || !printable(strs.user) {
			return &FieldError{Field: "userId", Code: CodeInvalid,
				Message: fmt.Sprintf("userId must be printable text without spaces, at most %d bytes", wire.MaxIDLen-len(UserIDPrefix))}
		}
		ev.AnonymousID, fields.anon = UserIDPrefix+strs.user, "userId"
	case strs.user != "": // an email: the events carry it, and the other id
		ev.AnonymousID, fields.anon = other, otherField
		other = ""
	default:
		other = ""
		if ev.AnonymousID == "" {
			return &FieldError{Field: "userId", Code: CodeRequired, Message: "a message needs userId or anonymousId"}
		}
	}
	ev.Email, fields.email = email, emailField
	if ev.ID == "" {
		ev.ID = newID() // the link event's id derives from it
	}
	r.Events = append(r.Events, ev)
	seg.events = append(seg.events, segEvent{msg: i, sentAt: sentAt, userAgent: ua, fields: fields})

	// A message with a userId, another id and an email links both ids to
	// the user: one event can carry one anonymous id, so the other gets a
	// link event (an alias), derived from the message's.
	if other != "" && email != "" && other != ev.AnonymousID {
		h := sha256.Sum256([]byte(ev.ID))
		link := wire.Event{
			ID:          "link-" + hex.EncodeToString(h[:16]),
			Type:        SegmentAliasType,
			Time:        ev.Time,
			AnonymousID: other,
			Email:       email,
			Props:       map[string]json.RawMessage{"previous_id": jsonString(other), "user_id": jsonString(strs.user)},
		}
		r.Events = append(r.Events, link)
		seg.events = append(seg.events, segEvent{msg: i, sentAt: sentAt, userAgent: ua, derived: ev.ID,
			fields: segFields{id: "messageId", typ: "type", anon: otherField, email: emailField, time: fields.time}})
	}
	return nil
}

func isSegmentCall(kind string) bool {
	for _, c := range SegmentCalls {
		if c == kind {
			return true
		}
	}
	return false
}

// withCampaign adds context.campaign to a page's URL as utm tags, unless
// the URL has utm tags of its own: the page's traffic is read from them.
func withCampaign(pageURL string, ctx *segContext) (string, *FieldError) {
	c := ctx.Campaign
	tags := url.Values{}
	for _, c := range []struct {
		raw        json.RawMessage
		key, param string
	}{
		{c.Source, "source", "utm_source"}, {c.Medium, "medium", "utm_medium"}, {c.Name, "name", "utm_campaign"},
		{c.Term, "term", "utm_term"}, {c.Content, "content", "utm_content"},
	} {
		s, fe := segString(c.raw, "context.campaign."+c.key)
		if fe != nil {
			return "", fe
		}
		if s != "" {
			tags.Set(c.param, s)
		}
	}
	if len(tags) == 0 || pageURL == "" {
		return pageURL, nil
	}
	u, err := url.Parse(pageURL)
	if err != nil {
		return pageURL, nil // normalise names the URL's problem
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "utm_") {
			return pageURL, nil
		}
	}
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += tags.Encode()
	return u.String(), nil
}

// segString reads an optional string; a number is taken as its text (ids
// are often numbers).
func segString(raw json.RawMessage, field string) (string, *FieldError) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if s, ok := stringish(raw); ok {
		return s, nil
	}
	return "", &FieldError{Field: field, Code: CodeInvalid, Message: field + " must be a string"}
}

// segTime reads an optional ISO 8601 time.
func segTime(raw json.RawMessage, field string) (*time.Time, *FieldError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); err == nil {
			return &t, nil
		}
	}
	return nil, &FieldError{Field: field, Code: CodeInvalid, Message: field + " must be an ISO 8601 time like \"2026-11-20T10:00:00.000Z\""}
}

// segmentErrors turns the errors Receive found in the events into errors
// of the request's messages: message index, Segment's field names, the
// first error of each message only. Messages that did not decode are
// merged in, in message order.
func (seg *segment) segmentErrors(evErrs []FieldError) []FieldError {
	out := make([]FieldError, 0, len(evErrs)+len(seg.errs))
	seen := map[int]bool{}
	for _, fe := range evErrs {
		se := seg.events[fe.Index]
		if seen[se.msg] {
			continue
		}
		seen[se.msg] = true
		fe.Index, fe.Field, fe.Message = se.msg, segField(se.fields, fe.Field), segMessageText(se.fields, fe)
		out = append(out, fe)
	}
	for _, fe := range seg.errs {
		if !seen[fe.Index] {
			seen[fe.Index] = true
			out = append(out, fe)
		}
	}
	// by message index; both lists are in order, so an insertion sort is cheap
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Index < out[j-1].Index; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// segField names a field of an event by the message's field it came from.
func segField(fields segFields, field string) string {
	head, rest, nested := strings.Cut(field, ".")
	var name string
	switch head {
	case "id":
		name = fields.id
	case "type":
		name = fields.typ
	case "anonymous_id":
		name = fields.anon
	case "email":
		name = fields.email
	case "url":
		name = fields.url
	case "referrer":
		name = fields.referrer
	case "time":
		name = fields.time
	case "props":
		name = fields.props
	}
	if name == "" {
		return field
	}
	if nested {
		return name + "." + rest
	}
	return name
}

// segMessageText rewrites the field names in an error message the way
// segField rewrites the field.
func segMessageText(fields segFields, fe FieldError) string {
	if fe.Field == "" {
		return fe.Message
	}
	return strings.Replace(fe.Message, fe.Field, segField(fields, fe.Field), 1)
}

// SegmentErrorPrefix returns the prefix of a message's field in a request's
// answer: "batch[3]." in a batch, "" for a single call.
func (r *Request) SegmentErrorPrefix(msg int) string {
	if r.seg == nil || r.seg.prefix == "" {
		return ""
	}
	return "batch[" + strconv.Itoa(msg) + "]."
}
