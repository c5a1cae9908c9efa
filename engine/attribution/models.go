// Package attribution credits every order to the touchpoints that led to
// it, under several models side by side, and counts the channels that only
// assisted (Google's Multi-Channel Funnels definitions; see
// shared/reference/attribution-and-events.md). models.go holds the models,
// pure functions of paths; projection.go keeps each order's path as events
// arrive; report.go sums them for a period.
package attribution

import (
	"math"
	"time"
)

// Model is an attribution model.
type Model string

// The models, all computed side by side.
const (
	LastInteraction  Model = "last_interaction"
	LastNonDirect    Model = "last_non_direct"
	FirstInteraction Model = "first_interaction"
	Linear           Model = "linear"
	PositionBased    Model = "position_based" // 40/20/40; one touch 100 %, two 50/50
	TimeDecay        Model = "time_decay"     // half-life 7 days, from touch to order
	DataDriven       Model = "data_driven"    // Markov chain removal effect over all paths
)

// Models lists every model in the order reports show them.
var Models = []Model{LastInteraction, LastNonDirect, FirstInteraction, Linear, PositionBased, TimeDecay, DataDriven}

// Direct is the channel of a visit with no known source.
const Direct = "Direct"

// HalfLife is the time decay model's half-life.
const HalfLife = 7 * 24 * time.Hour

// Touch is one touchpoint of a path.
type Touch struct {
	Time     time.Time `json:"time"`
	Channel  string    `json:"channel"`
	Source   string    `json:"source,omitempty"`
	Medium   string    `json:"medium,omitempty"`
	Campaign string    `json:"campaign,omitempty"`
}

// Shares returns the share of the order each touch of path gets under a
// positional model (every model but DataDriven), adding up to 1; at is the
// order's time. An empty path gets no shares.
func Shares(m Model, path []Touch, at time.Time) []float64 {
	n := len(path)
	s := make([]float64, n)
	if n == 0 {
		return s
	}
	switch m {
	case LastInteraction:
		s[n-1] = 1
	case LastNonDirect:
		last := n - 1 // only Direct: it gets the order
		for i := n - 1; i >= 0; i-- {
			if path[i].Channel != Direct {
				last = i
				break
			}
		}
		s[last] = 1
	case FirstInteraction:
		s[0] = 1
	case Linear:
		for i := range s {
			s[i] = 1 / float64(n)
		}
	case PositionBased:
		switch n {
		case 1:
			s[0] = 1
		case 2:
			s[0], s[1] = 0.5, 0.5
		default:
			s[0], s[n-1] = 0.4, 0.4
			for i := 1; i < n-1; i++ {
				s[i] = 0.2 / float64(n-2)
			}
		}
	case TimeDecay:
		var sum float64
		for i, t := range path {
			s[i] = math.Exp2(-at.Sub(t.Time).Hours() / HalfLife.Hours())
			sum += s[i]
		}
		for i := range s {
			s[i] /= sum
		}
	}
	return s
}

// Journey is a path for the data-driven model: converting or not.
type Journey struct {
	Channels  []string
	Converted bool
}

// States of the data-driven model's Markov chain besides the channels.
const (
	StartState      = "(start)"
	ConversionState = "(conversion)"
	NullState       = "(null)" // the journey ended without an order
)

// Chain counts the transitions between the states of journeys: the
// data-driven model's first-order Markov chain.
type Chain map[string]map[string]float64

// Add counts n transitions from one state to another.
func (c Chain) Add(from, to string, n float64) {
	if c[from] == nil {
		c[from] = map[string]float64{}
	}
	c[from][to] += n
}

// AddJourney counts a journey's transitions.
func (c Chain) AddJourney(j Journey) {
	if len(j.Channels) == 0 {
		return
	}
	prev := StartState
	for _, ch := range j.Channels {
		c.Add(prev, ch, 1)
		prev = ch
	}
	end := NullState
	if j.Converted {
		end = ConversionState
	}
	c.Add(prev, end, 1)
}

// RemovalEffects returns, for each channel, how much the probability of
// converting falls when the channel is removed from the chain: 1 means no
// journey converts without it. The data-driven model credits the channels
// of an order in proportion to their removal effects.
func (c Chain) RemovalEffects() map[string]float64 {
	trans := map[string]map[string]float64{}
	channels := map[string]bool{}
	for from, tos := range c {
		var sum float64
		for _, n := range tos {
			sum += n
		}
		if sum <= 0 {
			continue
		}
		trans[from] = map[string]float64{}
		for to, n := range tos {
			if n > 0 {
				trans[from][to] = n / sum
			}
			if to != ConversionState && to != NullState {
				channels[to] = true
			}
		}
	}
	// P(conversion) from start, with a channel removed ("" removes none):
	// a removed channel absorbs like null. Gauss-Seidel sweeps converge
	// fast on chains this small (one state per channel).
	pconv := func(removed string) float64 {
		p := map[string]float64{ConversionState: 1}
		for range 10_000 {
			delta := 0.0
			for from, tos := range trans {
				if from == removed {
					continue
				}
				v := 0.0
				for to, q := range tos {
					if to != removed {
						v += q * p[to]
					}
				}
				delta = max(delta, math.Abs(v-p[from]))
				p[from] = v
			}
			if delta < 1e-13 {
				break
			}
		}
		return p[StartState]
	}
	base := pconv("")
	out := make(map[string]float64, len(channels))
	for ch := range channels {
		if base > 0 {
			out[ch] = max(0, 1-pconv(ch)/base)
		}
	}
	return out
}

// RemovalEffects fits a chain to journeys and returns its removal effects.
func RemovalEffects(journeys []Journey) map[string]float64 {
	c := Chain{}
	for _, j := range journeys {
		c.AddJourney(j)
	}
	return c.RemovalEffects()
}

// DataDrivenShares returns the shares of a path's touches under the
// data-driven model: each distinct channel's removal effect, normalised over
// the path, split evenly over the channel's touches. A path whose channels
// have no effect at all is credited linearly.
func DataDrivenShares(path []Touch, effects map[string]float64) []float64 {
	s := make([]float64, len(path))
	touches := map[string]int{}
	for _, t := range path {
		touches[t.Channel]++
	}
	var sum float64
	for c := range touches {
		sum += effects[c]
	}
	if sum == 0 {
		return Shares(Linear, path, time.Time{})
	}
	for i, t := range path {
		s[i] = effects[t.Channel] / sum / float64(touches[t.Channel])
	}
	return s
}
