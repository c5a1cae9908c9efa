package model

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// User is what a shop keeps about a user through the Users API: the known
// fields of the reference article (email, isSubscribed, gender, city, ...)
// and any custom attribute. Its methods validate and merge them.
type User struct {
	Email        string         `json:"email"`
	IsSubscribed *bool          `json:"isSubscribed,omitempty"`
	Gender       string         `json:"gender,omitempty"`
	FirstName    string         `json:"firstName,omitempty"`
	LastName     string         `json:"lastName,omitempty"`
	City         string         `json:"city,omitempty"`
	Country      string         `json:"country,omitempty"`
	Phone        string         `json:"phone,omitempty"`
	Birthday     string         `json:"birthday,omitempty"` // YYYY-MM-DD
	Custom       map[string]any `json:"custom,omitempty"`   // string, number, bool or date (YYYY-MM-DD string)
	CreatedAt    time.Time      `json:"createdAt"`
	UpdatedAt    time.Time      `json:"updatedAt"`
}

// ComputedUserFields are the fields the API adds from what the tracker saw. Their
// names cannot be custom attributes.
var ComputedUserFields = []string{"firstSeen", "lastSeen", "sessions", "orders", "revenue", "events", "createdAt", "updatedAt", "anonymousIds", "segments"}

// UserGenders accepted in gender.
var UserGenders = []string{"female", "male", "other", "unknown"}

// FieldError names the field at fault.
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func bad(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Limits on attributes.
const (
	MaxCustomAttrs  = 100
	MaxAttrNameLen  = 64
	MaxAttrValueLen = 1024
)

var (
	nameRe  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	phoneRe = regexp.MustCompile(`^\+?[0-9 ().-]{3,32}$`)
)

// UserPatch is a set of changes decoded from a JSON object: a nil value
// removes the field.
type UserPatch map[string]json.RawMessage

// Apply changes a with the patch. With replace, fields the patch does not
// name are cleared (PUT); otherwise they are kept (PATCH, POST on an
// existing user). It returns whether isSubscribed changed.
func (a *User) Apply(p UserPatch, replace bool) (subscriptionChanged bool, err error) {
	before := a.IsSubscribed
	if replace {
		*a = User{Email: a.Email, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	}
	for k, raw := range p {
		if k == "email" {
			continue // the caller normalised and checked it
		}
		if err := a.set(k, raw); err != nil {
			return false, err
		}
	}
	if len(a.Custom) > MaxCustomAttrs {
		return false, bad("custom", "at most %d custom attributes", MaxCustomAttrs)
	}
	was, is := before != nil && *before, a.IsSubscribed != nil && *a.IsSubscribed
	return was != is && a.IsSubscribed != nil, nil
}

func (a *User) set(k string, raw json.RawMessage) error {
	null := len(raw) == 0 || string(raw) == "null"
	str := func() (string, error) {
		if null {
			return "", nil
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", bad(k, "must be a string")
		}
		s = strings.TrimSpace(s)
		if len(s) > MaxAttrValueLen || !utf8.ValidString(s) {
			return "", bad(k, "must be text of at most %d bytes", MaxAttrValueLen)
		}
		return s, nil
	}
	var err error
	switch k {
	case "isSubscribed":
		if null {
			a.IsSubscribed = nil
			return nil
		}
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return bad(k, "must be true or false")
		}
		a.IsSubscribed = &b
	case "gender":
		if a.Gender, err = str(); err == nil && a.Gender != "" {
			a.Gender = strings.ToLower(a.Gender)
			if !slices.Contains(UserGenders, a.Gender) {
				return bad(k, "must be one of %s", strings.Join(UserGenders, ", "))
			}
		}
	case "firstName":
		a.FirstName, err = str()
	case "lastName":
		a.LastName, err = str()
	case "city":
		a.City, err = str()
	case "country":
		a.Country, err = str()
	case "phone":
		if a.Phone, err = str(); err == nil && a.Phone != "" && !phoneRe.MatchString(a.Phone) {
			return bad(k, "must be a phone number such as +33 1 23 45 67 89")
		}
	case "birthday":
		if a.Birthday, err = str(); err == nil && a.Birthday != "" {
			if _, perr := time.Parse(time.DateOnly, a.Birthday); perr != nil {
				return bad(k, "must be a date such as 1990-04-23")
			}
		}
	default:
		return a.setCustom(k, raw, null)
	}
	return err
}

func (a *User) setCustom(k string, raw json.RawMessage, null bool) error {
	if slices.Contains(ComputedUserFields, k) {
		return bad(k, "is computed by Shoptrail and cannot be set")
	}
	if !nameRe.MatchString(k) || len(k) > MaxAttrNameLen {
		return bad(k, "a custom attribute name must be a letter followed by letters, digits or _, at most %d", MaxAttrNameLen)
	}
	if null {
		delete(a.Custom, k)
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return bad(k, "must be a string, number, true/false or a date")
	}
	switch x := v.(type) {
	case string:
		if len(x) > MaxAttrValueLen {
			return bad(k, "is longer than %d bytes", MaxAttrValueLen)
		}
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return bad(k, "must be a finite number")
		}
	case bool:
	default:
		return bad(k, "must be a string, number, true/false or a date, not an object or a list")
	}
	if a.Custom == nil {
		a.Custom = map[string]any{}
	}
	a.Custom[k] = v
	return nil
}

// Flat returns the attributes as the API shows them: known fields
// and custom attributes side by side, as they were sent.
func (a *User) Flat() map[string]any {
	out := map[string]any{"email": a.Email}
	set := func(k, v string) {
		if v != "" {
			out[k] = v
		}
	}
	if a.IsSubscribed != nil {
		out["isSubscribed"] = *a.IsSubscribed
	} else {
		out["isSubscribed"] = false
	}
	set("gender", a.Gender)
	set("firstName", a.FirstName)
	set("lastName", a.LastName)
	set("city", a.City)
	set("country", a.Country)
	set("phone", a.Phone)
	set("birthday", a.Birthday)
	maps.Copy(out, a.Custom)
	return out
}
