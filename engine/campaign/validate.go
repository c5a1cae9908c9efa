package campaign

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on a campaign's size: a campaign is shop content, not a data store.
const (
	MaxGroups      = 20
	MaxVariations  = 10
	MaxConditions  = 20
	MaxHTML        = 64 << 10
	MaxNameLen     = 200
	MaxSelectorLen = 500
	MaxValueLen    = 1000
	MaxBody        = 1 << 20 // a campaign's JSON
)

// opsByKind lists each condition kind's operators.
var opsByKind = map[string][]string{
	"url":                 {"contains", "not_contains", "equals", "regex", "wildcard"},
	"page_type":           {"eq", "ne"},
	"device":              {"eq"},
	"channel":             {"eq", "ne"},
	"source":              {"eq", "ne", "contains"},
	"referrer_host":       {"eq", "ne", "contains"},
	"visitor":             {"eq"},
	"segment":             {"in", "not_in"},
	"cart_value":          {"gt", "gte", "lt", "lte", "eq"},
	"cart_items":          {"gt", "gte", "lt", "lte", "eq"},
	"category":            {"eq", "ne"},
	"time_of_day":         {"between"},
	"date":                {"between", "before", "after"},
	"impressions_session": {"gt", "gte", "lt", "lte", "eq"},
	"impressions_user":    {"gt", "gte", "lt", "lte", "eq"},
}

// Kinds returns the condition kinds, sorted, for the editor and errors.
func Kinds() []string {
	var ks []string
	for k := range opsByKind {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Ops returns the operators of a condition kind.
func Ops(kind string) []string { return opsByKind[kind] }

var (
	pageTypes = []string{"product", "category", "cart", "checkout", "home", "other"}
	modes     = []string{ModeReplace, ModeBefore, ModeAfter, ModePrepend, ModeAppend, ModePopup, ModeBarTop, ModeBarBottom}
	goals     = []string{GoalShown, GoalClick, GoalClose, GoalOrder}
	triggers  = []string{TriggerImmediately, TriggerDelay, TriggerScroll, TriggerExitIntent}
	statuses  = []string{StatusDraft, StatusActive, StatusPaused, StatusArchived}
)

// selectorOK accepts what a CSS selector may hold, and refuses what could
// break out of the style rule the head script builds from it ({, }, <, ;).
var selectorOK = regexp.MustCompile(`^[A-Za-z0-9_\-#.\[\]="':>+~*(),\s^$|]+$`)

// Segments answers whether a profile is in a segment. Segments are another
// package's (engine/segment); the app passes nil until they exist, and a
// campaign with a segment condition is then refused on save.
type Segments interface {
	IsMember(profileID, segmentID string) (bool, error)
}

// ErrNoSegments is the message of a segment condition without segments.
const ErrNoSegments = "segments are not available in this installation"

// Normalise fills defaults (status draft, goal shown, trigger immediately)
// and trims names; Validate checks the result.
func (c *Campaign) Normalise() {
	c.Name = strings.TrimSpace(c.Name)
	if c.Status == "" {
		c.Status = StatusDraft
	}
	for i := range c.Groups {
		g := &c.Groups[i]
		g.Name = strings.TrimSpace(g.Name)
		if g.Goal == "" {
			g.Goal = GoalShown
		}
		if g.Trigger == nil {
			g.Trigger = &Trigger{Kind: TriggerImmediately}
		}
		g.Placement.Selector = strings.TrimSpace(g.Placement.Selector)
		for j := range g.Variations {
			g.Variations[j].Name = strings.TrimSpace(g.Variations[j].Name)
		}
	}
}

// Validate checks a normalised campaign. The error is a *FieldError that
// names the JSON path of the first bad field. segments may be nil.
func (c *Campaign) Validate(segments Segments) error {
	bad := func(path, format string, args ...any) error {
		return &FieldError{Path: path, Message: fmt.Sprintf(format, args...)}
	}
	if c.Name == "" || utf8.RuneCountInString(c.Name) > MaxNameLen {
		return bad("name", "a campaign needs a name of 1 to %d characters", MaxNameLen)
	}
	if !slices.Contains(statuses, c.Status) {
		return bad("status", "status must be one of %s", strings.Join(statuses, ", "))
	}
	if len(c.Groups) == 0 || len(c.Groups) > MaxGroups {
		return bad("groups", "a campaign needs 1 to %d groups", MaxGroups)
	}
	for i, g := range c.Groups {
		p := fmt.Sprintf("groups[%d]", i)
		if utf8.RuneCountInString(g.Name) > MaxNameLen {
			return bad(p+".name", "a group's name has at most %d characters", MaxNameLen)
		}
		if !slices.Contains(modes, g.Placement.Mode) {
			return bad(p+".placement.mode", "mode must be one of %s", strings.Join(modes, ", "))
		}
		sel := g.Placement.Selector
		switch {
		case g.Placement.Overlay() && sel != "":
			return bad(p+".placement.selector", "an overlay (%s) takes no selector", g.Placement.Mode)
		case !g.Placement.Overlay() && sel == "":
			return bad(p+".placement.selector", "mode %s needs a CSS selector, e.g. h1 or #promo", g.Placement.Mode)
		case len(sel) > MaxSelectorLen:
			return bad(p+".placement.selector", "a selector has at most %d characters", MaxSelectorLen)
		case sel != "" && !selectorOK.MatchString(sel):
			return bad(p+".placement.selector", "%q is not a CSS selector this editor accepts (letters, digits, # . [ ] = : > + ~ * ( ) , quotes and spaces)", sel)
		}
		if !slices.Contains(goals, g.Goal) {
			return bad(p+".goal", "goal must be one of %s", strings.Join(goals, ", "))
		}
		if t := g.Trigger; t != nil {
			if !slices.Contains(triggers, t.Kind) {
				return bad(p+".trigger.kind", "trigger must be one of %s", strings.Join(triggers, ", "))
			}
			switch {
			case t.Kind == TriggerDelay && (t.Value <= 0 || t.Value > 3600):
				return bad(p+".trigger.value", "a delay is 1 to 3600 seconds")
			case t.Kind == TriggerScroll && (t.Value <= 0 || t.Value > 100):
				return bad(p+".trigger.value", "a scroll depth is 1 to 100 percent")
			case (t.Kind == TriggerImmediately || t.Kind == TriggerExitIntent) && t.Value != 0:
				return bad(p+".trigger.value", "trigger %s takes no value", t.Kind)
			}
		}
		if g.Limits.PerSession < 0 || g.Limits.PerSession > 1000 {
			return bad(p+".limits.per_session", "per_session is 0 (no cap) to 1000")
		}
		if g.Limits.PerUser < 0 || g.Limits.PerUser > 100000 {
			return bad(p+".limits.per_user", "per_user is 0 (no cap) to 100000")
		}
		if len(g.Conditions) > MaxConditions {
			return bad(p+".conditions", "a group has at most %d conditions", MaxConditions)
		}
		for j, cd := range g.Conditions {
			if err := cd.validate(fmt.Sprintf("%s.conditions[%d]", p, j), segments); err != nil {
				return err
			}
		}
		if len(g.Variations) == 0 || len(g.Variations) > MaxVariations {
			return bad(p+".variations", "a group needs 1 to %d variations", MaxVariations)
		}
		sum, names := 0, map[string]bool{}
		for j, v := range g.Variations {
			vp := fmt.Sprintf("%s.variations[%d]", p, j)
			if v.Name == "" || utf8.RuneCountInString(v.Name) > 100 {
				return bad(vp+".name", "a variation needs a name of 1 to 100 characters")
			}
			if names[v.Name] {
				return bad(vp+".name", "two variations of a group are named %q", v.Name)
			}
			names[v.Name] = true
			if v.Weight < 0 || v.Weight > 100 {
				return bad(vp+".weight", "a weight is 0 to 100 (percent of the group's shoppers)")
			}
			sum += v.Weight
			if v.Control && strings.TrimSpace(v.HTML) != "" {
				return bad(vp+".html", "a control variation shows nothing: leave its html empty")
			}
			if !v.Control && strings.TrimSpace(v.HTML) == "" {
				return bad(vp+".html", "a variation needs content (or \"control\": true to show nothing)")
			}
			if len(v.HTML) > MaxHTML {
				return bad(vp+".html", "content has at most %d bytes", MaxHTML)
			}
		}
		if sum != 100 {
			return bad(p+".variations", "the weights add up to %d; they must add up to 100", sum)
		}
	}
	return nil
}

func (cd Condition) validate(p string, segments Segments) error {
	bad := func(path, format string, args ...any) error {
		return &FieldError{Path: path, Message: fmt.Sprintf(format, args...)}
	}
	ops, ok := opsByKind[cd.Kind]
	if !ok {
		return bad(p+".kind", "unknown condition kind %q (known: %s)", cd.Kind, strings.Join(Kinds(), ", "))
	}
	if !slices.Contains(ops, cd.Op) {
		return bad(p+".op", "a %s condition takes op %s", cd.Kind, strings.Join(ops, ", "))
	}
	v := string(cd.Value)
	vp := p + ".value"
	if len(v) > MaxValueLen {
		return bad(vp, "a value has at most %d bytes", MaxValueLen)
	}
	if strings.TrimSpace(v) == "" {
		return bad(vp, "a %s condition needs a value", cd.Kind)
	}
	switch cd.Kind {
	case "url":
		if cd.Op == "regex" {
			if _, err := regexp.Compile(v); err != nil {
				return bad(vp, "not a regular expression: %v", err)
			}
		}
	case "page_type":
		if !slices.Contains(pageTypes, v) {
			return bad(vp, "page_type is one of %s", strings.Join(pageTypes, ", "))
		}
	case "device":
		if v != "mobile" && v != "desktop" {
			return bad(vp, "device is mobile or desktop")
		}
	case "visitor":
		if v != "new" && v != "returning" {
			return bad(vp, "visitor is new or returning")
		}
	case "segment":
		if segments == nil {
			return bad(vp, ErrNoSegments)
		}
		// engine/segment also says which segments exist
		if known, ok := segments.(interface{ Exists(id string) bool }); ok && !known.Exists(v) {
			return bad(vp, "no segment has the id %q (see GET /api/v1/segments)", v)
		}
	case "cart_value":
		if f, err := strconv.ParseFloat(v, 64); err != nil || f < 0 || f > 1e12 {
			return bad(vp, "cart_value is an amount such as 50 or 49.90, in the cart's currency")
		}
	case "cart_items", "impressions_session", "impressions_user":
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 1000000 {
			return bad(vp, "%s is a whole number from 0", cd.Kind)
		}
	case "time_of_day":
		if _, _, err := parseClockRange(v); err != nil {
			return bad(vp, "time_of_day is a range in UTC such as 09:00-17:30")
		}
	case "date":
		if cd.Op == "between" {
			if _, _, err := parseDateRange(v); err != nil {
				return bad(vp, "a date range is 2026-12-01..2026-12-24 (UTC, both days included)")
			}
		} else if _, err := time.Parse(time.DateOnly, v); err != nil {
			return bad(vp, "a date is 2026-12-24 (UTC)")
		}
	}
	return nil
}

// parseClockRange parses "HH:MM-HH:MM" into minutes of the day. A range
// whose end is before its start wraps around midnight.
func parseClockRange(v string) (from, to int, err error) {
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		return 0, 0, fmt.Errorf("no -")
	}
	ta, err1 := time.Parse("15:04", strings.TrimSpace(a))
	tb, err2 := time.Parse("15:04", strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad clock")
	}
	return ta.Hour()*60 + ta.Minute(), tb.Hour()*60 + tb.Minute(), nil
}

// parseDateRange parses "YYYY-MM-DD..YYYY-MM-DD" (both days included).
func parseDateRange(v string) (from, to time.Time, err error) {
	a, b, ok := strings.Cut(v, "..")
	if !ok {
		return from, to, fmt.Errorf("no ..")
	}
	if from, err = time.Parse(time.DateOnly, strings.TrimSpace(a)); err != nil {
		return
	}
	if to, err = time.Parse(time.DateOnly, strings.TrimSpace(b)); err != nil {
		return
	}
	if to.Before(from) {
		return from, to, fmt.Errorf("ends before it starts")
	}
	return from, to.Add(24 * time.Hour), nil
}
