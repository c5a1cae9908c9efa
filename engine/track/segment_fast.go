package track

import (
	"encoding/json"

	"github.com/shoptrail/shoptrail/engine/fastjson"
)

// segmentNames are the JSON names of segMessage's fields, and of the
// fields read from its context.
var (
	segMessageNames = []string{"type", "messageId", "anonymousId", "userId", "previousId", "groupId", "event", "name",
		"category", "properties", "traits", "context", "timestamp", "originalTimestamp", "sentAt"}
	segContextNames  = []string{"page", "campaign", "traits", "userAgent"}
	segPageNames     = []string{"url", "referrer"}
	segCampaignNames = []string{"name", "source", "medium", "term", "content"}
)

// fastSegmentBatch decodes a valid JSON batch body {"batch":[...],"sentAt":...}
// of the usual shape without reflection, as json.Unmarshal would into
// []json.RawMessage and then each message into a segMessage. It reports
// false at anything it does not handle the same way (a batch-level context,
// a field name in other letter case, an object that is not one, a message
// over SegmentMaxMessageBytes); the caller then decodes with encoding/json,
// which also names what is wrong. FuzzFastSegment holds it to that. The
// raw values point into body, except the properties' and traits', which
// are copied (they are stored).
func fastSegmentBatch(body []byte, msgs *[]segMessage, sentAt *json.RawMessage) bool {
	d := fastDecoder{fastjson.NewDecoder(body)}
	if !d.Consume('{') {
		return false
	}
	seen := false
	return d.Object(func(key []byte) bool {
		switch string(key) {
		case "batch":
			if seen || !d.Consume('[') {
				return false // a repeated batch: encoding/json would merge them
			}
			seen = true
			return d.Array(func() bool {
				d.WS()
				start := d.Pos()
				*msgs = append(*msgs, segMessage{})
				if !d.Consume('{') || !d.segMessage(&(*msgs)[len(*msgs)-1]) {
					return false
				}
				return d.Pos()-start <= SegmentMaxMessageBytes
			})
		case "sentAt":
			*sentAt = d.Skip()
			return true
		}
		if fastjson.FoldsTo(key, "batch", "sentAt", "context") {
			return false
		}
		d.Skip()
		return true
	})
}

// segMessage decodes the fields of a message whose '{' was consumed.
func (d *fastDecoder) segMessage(m *segMessage) bool {
	return d.Object(func(key []byte) bool {
		var dst *json.RawMessage
		switch string(key) {
		case "type":
			dst = &m.Type
		case "messageId":
			dst = &m.MessageID
		case "anonymousId":
			dst = &m.AnonymousID
		case "userId":
			dst = &m.UserID
		case "previousId":
			dst = &m.PreviousID
		case "groupId":
			dst = &m.GroupID
		case "event":
			dst = &m.Event
		case "name":
			dst = &m.Name
		case "category":
			dst = &m.Category
		case "timestamp":
			dst = &m.Timestamp
		case "originalTimestamp":
			dst = &m.OriginalTimestamp
		case "sentAt":
			dst = &m.SentAt
		case "properties":
			return d.RawMap(&m.Properties)
		case "traits":
			return d.RawMap(&m.Traits)
		case "context":
			if d.Null() {
				m.Context = nil
				return true
			}
			if !d.Consume('{') {
				return false
			}
			if m.Context == nil {
				m.Context = &segContext{}
			}
			return d.segContext(m.Context)
		default:
			if fastjson.FoldsTo(key, segMessageNames...) {
				return false
			}
			d.Skip()
			return true
		}
		*dst = d.Skip()
		return true
	})
}

// segContext decodes the fields of a context whose '{' was consumed.
func (d *fastDecoder) segContext(c *segContext) bool {
	return d.Object(func(key []byte) bool {
		switch string(key) {
		case "userAgent":
			c.UserAgent = d.Skip()
			return true
		case "page":
			if d.Null() {
				c.Page = nil
				return true
			}
			if c.Page == nil {
				c.Page = &segPage{}
			}
			return d.Consume('{') && d.fields(segPageNames, &c.Page.URL, &c.Page.Referrer)
		case "campaign":
			if d.Null() {
				c.Campaign = nil
				return true
			}
			if c.Campaign == nil {
				c.Campaign = &segCampaign{}
			}
			cp := c.Campaign
			return d.Consume('{') && d.fields(segCampaignNames, &cp.Name, &cp.Source, &cp.Medium, &cp.Term, &cp.Content)
		case "traits":
			if d.Null() {
				c.Traits = nil
				return true
			}
			if c.Traits == nil {
				c.Traits = &segTraits{}
			}
			return d.Consume('{') && d.fields([]string{"email"}, &c.Traits.Email)
		}
		if fastjson.FoldsTo(key, segContextNames...) {
			return false
		}
		d.Skip()
		return true
	})
}

// fields decodes an object whose '{' was consumed into raw values, the
// value of names[i] into dst[i]; other keys are skipped.
func (d *fastDecoder) fields(names []string, dst ...*json.RawMessage) bool {
	return d.Object(func(key []byte) bool {
		for i, n := range names {
			if string(key) == n {
				*dst[i] = d.Skip()
				return true
			}
		}
		if fastjson.FoldsTo(key, names...) {
			return false
		}
		d.Skip()
		return true
	})
}
