package user

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/track"
)

// Import limits.
const (
	// importChunk is how many rows share one transaction: their attributes
	// and the events that record their changes must fit one.
	importChunk = 1000
	// MaxImportErrors bounds the errors a report lists (all are counted).
	MaxImportErrors = 1000
	// MaxLine bounds one NDJSON line.
	MaxLine = 64 << 10
)

// ImportError is a row that was not imported.
type ImportError struct {
	Line    int    `json:"line"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// ImportReport says what an import did.
type ImportReport struct {
	Created int           `json:"created"`
	Updated int           `json:"updated"`
	Failed  int           `json:"failed"`
	Errors  []ImportError `json:"errors"`
}

// BadInputError means the body as a whole cannot be read (no CSV header,
// a line too long): nothing after it was imported.
type BadInputError struct{ Message string }

func (e *BadInputError) Error() string { return e.Message }

type row struct {
	line  int
	email string
	patch model.UserPatch
}

// Import upserts users from NDJSON (one JSON object a line) or CSV (a
// header of field names), in chunks; ndjson says which. Rows with errors
// are reported by line and change nothing; the others are saved.
func (s *Service) Import(ctx context.Context, r io.Reader, ndjson bool) (ImportReport, error) {
	rep := ImportReport{Errors: []ImportError{}}
	var rows []row
	fail := func(line int, field, msg string) {
		rep.Failed++
		if len(rep.Errors) < MaxImportErrors {
			rep.Errors = append(rep.Errors, ImportError{line, field, msg})
		}
	}
	add := func(line int, p model.UserPatch) error {
		var raw string
		if json.Unmarshal(p["email"], &raw) != nil || raw == "" {
			fail(line, "email", "email is required")
			return nil
		}
		email, err := track.NormaliseEmail(raw)
		if err != nil {
			fail(line, "email", err.Error())
			return nil
		}
		rows = append(rows, row{line, email, p})
		if len(rows) == importChunk {
			err := s.saveMany(ctx, rows, &rep, fail)
			rows = rows[:0]
			return err
		}
		return nil
	}
	var err error
	if ndjson {
		err = readNDJSON(r, add, fail)
	} else {
		err = readCSV(r, add, fail)
	}
	if err == nil && len(rows) > 0 {
		err = s.saveMany(ctx, rows, &rep, fail)
	}
	sortErrors(rep.Errors)
	return rep, err
}

// LooksLikeNDJSON reports whether a body starting with first is NDJSON.
func LooksLikeNDJSON(first []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(first, " \t\r\n\ufeff"), []byte("{"))
}

func readNDJSON(r io.Reader, add func(int, model.UserPatch) error, fail func(int, string, string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var p model.UserPatch
		if err := json.Unmarshal(b, &p); err != nil {
			fail(line, "", "not a JSON object: "+err.Error())
			continue
		}
		if err := add(line, p); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return &BadInputError{fmt.Sprintf("line %d is longer than %d KiB", line+1, MaxLine>>10)}
		}
		return err
	}
	return nil
}

// readCSV reads rows under a header of field names. Known fields are
// typed (isSubscribed: true/false/1/0/yes/no); custom attributes stay text.
func readCSV(r io.Reader, add func(int, model.UserPatch) error, fail func(int, string, string)) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		var pe *csv.ParseError
		if err == io.EOF || errors.As(err, &pe) {
			return &BadInputError{"the first line must be a CSV header of field names"}
		}
		return err
	}
	for i, h := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				fail(pe.Line, "", pe.Err.Error())
				continue
			}
			return err
		}
		if len(rec) != len(header) {
			fail(line, "", "the row has "+strconv.Itoa(len(rec))+" fields, the header "+strconv.Itoa(len(header)))
			continue
		}
		p := model.UserPatch{}
		for i, v := range rec {
			if v == "" && header[i] != "email" {
				continue
			}
			if header[i] == "isSubscribed" {
				switch strings.ToLower(strings.TrimSpace(v)) {
				case "true", "1", "yes":
					p[header[i]] = json.RawMessage("true")
				case "false", "0", "no":
					p[header[i]] = json.RawMessage("false")
				default:
					p[header[i]] = json.RawMessage(strconv.Quote(v)) // reported by Apply
				}
				continue
			}
			b, _ := json.Marshal(v)
			p[header[i]] = b
		}
		if err := add(line, p); err != nil {
			return err
		}
	}
}
