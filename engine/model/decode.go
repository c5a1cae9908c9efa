package model

import (
	"encoding/json"

	"github.com/shoptrail/shoptrail/engine/fastjson"
)

// DecodeEvent decodes an event as json.Unmarshal does into a zero Event.
// The shape AppendJSON writes is read without reflection, about five times
// faster: the projections read every event back from the log, and
// encoding/json was a seventh of the process's CPU while they caught up
// under load. Anything else (other letter case, an unusual escape, invalid
// JSON) goes to encoding/json; FuzzDecodeEvent holds the two equal. b is
// not retained.
func DecodeEvent(b []byte, e *Event) error {
	*e = Event{}
	if fastEvent(b, e) {
		return nil
	}
	*e = Event{}
	return json.Unmarshal(b, e)
}

// eventNames and trafficNames are the JSON names of Event's and Traffic's
// fields.
var (
	eventNames = []string{"seq", "id", "type", "original_type", "time", "received_at", "time_clamped", "via", "anonymous_id",
		"session_id", "email", "url", "referrer", "props", "traffic", "derived_from", "user_agent", "bot"}
	trafficNames = []string{"source", "medium", "campaign", "term", "content", "click_id", "referrer_host", "channel"}
)

func fastEvent(b []byte, e *Event) bool {
	d := fastjson.NewDecoder(b)
	if !d.Consume('{') {
		return false
	}
	ok := d.Object(func(key []byte) bool {
		var dst *string
		switch string(key) {
		case "seq":
			return d.Uint(&e.Seq)
		case "id":
			dst = &e.ID
		case "type":
			dst = &e.Type
		case "original_type":
			dst = &e.OriginalType
		case "time":
			return d.Time(&e.Time)
		case "received_at":
			return d.Time(&e.ReceivedAt)
		case "time_clamped":
			return d.Bool(&e.TimeClamped)
		case "via":
			dst = &e.Via
		case "anonymous_id":
			dst = &e.AnonymousID
		case "session_id":
			dst = &e.SessionID
		case "email":
			dst = &e.Email
		case "url":
			dst = &e.URL
		case "referrer":
			dst = &e.Referrer
		case "derived_from":
			dst = &e.DerivedFrom
		case "user_agent":
			dst = &e.UserAgent
		case "bot":
			return d.Bool(&e.Bot)
		case "props":
			return d.RawMap(&e.Props)
		case "traffic":
			return fastTraffic(&d, &e.Traffic)
		default:
			if fastjson.FoldsTo(key, eventNames...) {
				return false
			}
			_, ok := d.ValidValue() // an unknown key: ignored
			return ok
		}
		return fastString(&d, dst)
	})
	return ok && d.End()
}

// fastString reads a string into *dst; null leaves it as it is.
func fastString(d *fastjson.Decoder, dst *string) bool {
	if d.Null() {
		return true
	}
	s, ok := d.String()
	if ok {
		*dst = s
	}
	return ok
}

// fastTraffic reads a traffic object into *t, allocated if nil, as
// json.Unmarshal does; null sets it nil.
func fastTraffic(d *fastjson.Decoder, t **Traffic) bool {
	if d.Null() {
		*t = nil
		return true
	}
	if !d.Consume('{') {
		return false
	}
	if *t == nil {
		*t = new(Traffic)
	}
	tr := *t
	return d.Object(func(key []byte) bool {
		var dst *string
		switch string(key) {
		case "source":
			dst = &tr.Source
		case "medium":
			dst = &tr.Medium
		case "campaign":
			dst = &tr.Campaign
		case "term":
			dst = &tr.Term
		case "content":
			dst = &tr.Content
		case "click_id":
			dst = &tr.ClickID
		case "referrer_host":
			dst = &tr.ReferrerHost
		case "channel":
			dst = &tr.Channel
		default:
			if fastjson.FoldsTo(key, trafficNames...) {
				return false
			}
			_, ok := d.ValidValue()
			return ok
		}
		return fastString(d, dst)
	})
}
