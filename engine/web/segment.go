package web

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/track"
	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

// segmentAnswer is Segment's answer, {"success":true}, with the counts and
// errors of POST /api/v1/events. Errors name the message by its index and
// the field by Segment's name ("batch[1].properties.currency").
type segmentAnswer struct {
	Success bool   `json:"success"`
	Error   *Error `json:"error,omitempty"`
	wire.Response
}

// segmentAPI is POST /v1/{call}.
func (s *Server) segmentAPI(call string) handlerFunc {
	limit := int64(track.SegmentMaxMessageBytes)
	if call == track.SegmentBatch {
		limit = track.SegmentMaxBatchBytes
	}
	return s.admitUpTo(limit, func(w http.ResponseWriter, r *http.Request) error {
		if r.Header.Get("Origin") != "" {
			// A write key gives the API's trust (its orders are the shop's
			// confirmations): it belongs on a server, never in a page.
			// Browsers send Origin with every POST; Segment's server SDKs
			// do not. And no CORS: a page elsewhere cannot send the key.
			return errorf(http.StatusForbidden, "origin_not_allowed", "Origin",
				"the Segment API takes calls from servers only: a write key must not be used in a web page (send browser events to /t with the tracker)")
		}
		body, err := readSegmentBody(w, r, limit)
		defer putBody(body)
		if err != nil {
			return err
		}
		defer s.admitted(int64(len(*body)), time.Now())
		req := track.Request{Via: model.ViaAPI}
		err = track.DecodeSegment(call, *body, &req)
		var be *track.BodyError
		switch {
		case errors.As(err, &be):
			code := "invalid_field"
			if be.Field == "body" {
				code = "invalid_json"
			}
			return errorf(http.StatusBadRequest, code, be.Field, be.Message)
		case errors.Is(err, track.ErrNoEvents):
			return errorf(http.StatusBadRequest, "required", "batch", "the batch has no messages")
		case errors.Is(err, track.ErrTooManyEvs):
			return errorf(http.StatusRequestEntityTooLarge, "too_large", "batch", "a batch holds at most "+strconv.Itoa(wire.MaxEvents)+" messages")
		case err != nil:
			return err
		}
		res, err := s.tracker.Receive(&req)
		if err != nil {
			return err
		}
		ans := segmentAnswer{Success: len(res.Errors) == 0, Response: res.Response}
		status := http.StatusOK
		if len(res.Errors) > 0 {
			// Segment's SDKs do not retry a 400; the valid messages are
			// stored, and a retry would only find them duplicates.
			status = http.StatusBadRequest
			fe := res.Errors[0]
			field := req.SegmentErrorPrefix(fe.Index) + fe.Field
			if fe.Field == "" {
				field = strings.TrimSuffix(field, ".")
				if field == "" {
					field = "body"
				}
			}
			ans.Error = &Error{Code: fe.Code, Field: field, Message: fe.Message}
		}
		writeJSON(w, status, ans)
		return nil
	})
}

// readSegmentBody reads a body of at most limit bytes, uncompressed:
// Segment's SDKs may send it gzip-compressed, and the limit applies to what
// it inflates to (a gzip bomb is refused after limit bytes, not buffered).
func readSegmentBody(w http.ResponseWriter, r *http.Request, limit int64) (*[]byte, error) {
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	if enc != "" && enc != "identity" && enc != "gzip" {
		return bodies.Get().(*[]byte), errorf(http.StatusUnsupportedMediaType, "unsupported_encoding", "Content-Encoding",
			"Content-Encoding "+strconv.Quote(enc)+" is not supported; send gzip or an uncompressed body")
	}
	body, err := readBody(w, r, limit)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return body, err
	case err != nil: // cut short, or slower than the body deadline
		return body, errorf(http.StatusBadRequest, "invalid_body", "body", "the body could not be read: "+err.Error())
	case enc != "gzip":
		return body, nil
	}
	defer putBody(body)
	out := bodies.Get().(*[]byte)
	zr, err := gzip.NewReader(bytes.NewReader(*body))
	if err != nil {
		return out, errorf(http.StatusBadRequest, "invalid_body", "body", "the body is not gzip data (Content-Encoding: gzip): "+err.Error())
	}
	buf := bytes.NewBuffer((*out)[:0])
	n, err := buf.ReadFrom(io.LimitReader(zr, limit+1))
	*out = buf.Bytes()
	switch {
	case err != nil:
		return out, errorf(http.StatusBadRequest, "invalid_body", "body", "the gzip body could not be read: "+err.Error())
	case n > limit:
		return out, errorf(http.StatusRequestEntityTooLarge, "too_large", "body",
			"the body is larger than "+strconv.FormatInt(limit, 10)+" bytes uncompressed")
	}
	return out, nil
}
