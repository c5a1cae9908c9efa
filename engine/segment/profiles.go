package segment

import (
	"hash/maphash"
	"math"
	"unsafe"
)

// profileTable numbers the preview index's profiles compactly: a million
// shoppers' ids as Go strings in a slice and a map cost about 100 bytes a
// profile beside the id's bytes, more than the index's events. Here the ids
// are one arena of bytes with an end offset per number, and the numbers an
// open-addressing hash table (linear probing) of uint32: about 4 + 4 / load
// bytes a profile beside the id's bytes.
//
// What it holds is bytes: its arrays' capacity.
//
// Numbers are never reused: a removed id (a merge) leaves a tombstone in
// the table and its bytes in the arena, and is numbered anew if it comes
// back. The arena and the ends only grow (appends never write over what a
// snapshot of them reads).
type profileTable struct {
	arena []byte
	ends  []uint32 // by number: where its id ends in arena
	slots []uint32 // number+1; 0 empty; tomb removed
	used  int      // slots not empty (live and tombstones)
	live  int
	seed  maphash.Seed
	// hash is maphash by default (seeded at random: no shop can choose
	// ids that collide); tests make it collide
	hash func(seed maphash.Seed, s string) uint64
}

const (
	tomb = ^uint32(0)
	// minSlots is the table's size when its first id comes.
	minSlots = 1 << 10
	// slotBytes is the table's memory per slot, arenaLimit how many bytes
	// of ids the arena's offsets can address
	slotBytes  = 4
	arenaLimit = math.MaxUint32
)

func newProfileTable() *profileTable {
	return &profileTable{seed: maphash.MakeSeed(), hash: maphash.String}
}

// len returns how many numbers it gave (removed ones too).
func (t *profileTable) len() int { return len(t.ends) }

// id returns the id of number n.
func (t *profileTable) id(n uint32) string { return idOf(t.arena, t.ends, n) }

// idOf returns the id of number n of an arena and its ends, without a copy
// (the arena's bytes under an end are never written again).
func idOf(arena []byte, ends []uint32, n uint32) string {
	start := uint32(0)
	if n > 0 {
		start = ends[n-1]
	}
	if start == ends[n] {
		return ""
	}
	return unsafe.String(&arena[start], int(ends[n]-start))
}

// find returns id's slot and number; the slot where it would go (the
// first tombstone or empty slot on its probe) if absent.
func (t *profileTable) find(id string) (slot int, n uint32, ok bool) {
	mask := len(t.slots) - 1
	free := -1
	for i := int(t.hash(t.seed, id)) & mask; ; i = (i + 1) & mask {
		switch v := t.slots[i]; v {
		case 0:
			if free < 0 {
				free = i
			}
			return free, 0, false
		case tomb:
			if free < 0 {
				free = i
			}
		default:
			if t.id(v-1) == id {
				return i, v - 1, true
			}
		}
	}
}

// lookup returns id's number, if it has one.
func (t *profileTable) lookup(id string) (uint32, bool) {
	if t.live == 0 {
		return 0, false
	}
	_, n, ok := t.find(id)
	return n, ok
}

// add returns id's number, giving it the next one if it has none, and how
// many bytes the table's arrays grew by (their capacity). It fails (ok false) when the arena or the
// numbers are full.
func (t *profileTable) add(id string) (n uint32, grew int64, ok bool) {
	if t.live > 0 {
		if _, n, ok := t.find(id); ok {
			return n, 0, true
		}
	}
	if len(t.arena)+len(id) > arenaLimit || len(t.ends) >= int(tomb)-1 {
		return 0, 0, false
	}
	// at most 3/4 full, tombstones counted: grow (or only sweep the
	// tombstones when the live ids alone fit in half)
	if (t.used+1)*4 > len(t.slots)*3 {
		size := max(len(t.slots), minSlots)
		for (t.live+1)*2 > size {
			size *= 2
		}
		grew = int64(size-len(t.slots)) * slotBytes
		t.rehash(size)
	}
	n = uint32(len(t.ends))
	t.arena = appendCounted(&grew, t.arena, []byte(id)...)
	t.ends = appendCounted(&grew, t.ends, uint32(len(t.arena)))
	slot, _, _ := t.find(id)
	if t.slots[slot] == 0 {
		t.used++
	}
	t.slots[slot] = n + 1
	t.live++
	return n, grew, true
}

// remove forgets id's number (it is numbered anew if it comes back).
func (t *profileTable) remove(id string) (uint32, bool) {
	if t.live == 0 {
		return 0, false
	}
	slot, n, ok := t.find(id)
	if !ok {
		return 0, false
	}
	t.slots[slot] = tomb
	t.live--
	return n, true
}

// rehash puts the live numbers into a table of size slots (a power of 2).
func (t *profileTable) rehash(size int) {
	old := t.slots
	t.slots = make([]uint32, size)
	t.used = 0
	mask := size - 1
	for _, v := range old {
		if v == 0 || v == tomb {
			continue
		}
		i := int(t.hash(t.seed, t.id(v-1))) & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = v
		t.used++
	}
}
