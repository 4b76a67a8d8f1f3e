package dedup

import "math/bits"

// table is a set of uint64 hashes: open addressing with linear probing, at most half
// full, deletion by backward shift (Knuth, TAOCP vol. 3, 6.4 Algorithm R), so that no
// tombstones accumulate while the ring evicts one entry per insertion. A Go map costs
// 44 bytes per entry here and ~3 times the time under this churn (BenchmarkAdd).
// Slot value 0 means empty; the hash 0 is stored as 1.
type table struct {
	slots []uint64
	mask  uint64
}

func newTable(entries int) table {
	n := uint64(1) << bits.Len64(uint64(2*entries-1)) // a power of two ≥ 2×entries
	if n < 8 {
		n = 8
	}
	return table{slots: make([]uint64, n), mask: n - 1}
}

func nonZero(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// find returns the slot holding h, or the empty slot where it would go.
func (t *table) find(h uint64) (uint64, bool) {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		switch t.slots[i] {
		case h:
			return i, true
		case 0:
			return i, false
		}
	}
}

func (t *table) contains(h uint64) bool {
	_, ok := t.find(nonZero(h))
	return ok
}

// add inserts h, which must not be present; the table must have room (the ring keeps
// it at most half full).
func (t *table) add(h uint64) {
	h = nonZero(h)
	i, _ := t.find(h)
	t.slots[i] = h
}

// remove deletes h if present, moving back the entries of its probe run that would
// otherwise become unreachable.
func (t *table) remove(h uint64) {
	h = nonZero(h)
	i, ok := t.find(h)
	if !ok {
		return
	}
	for j := (i + 1) & t.mask; t.slots[j] != 0; j = (j + 1) & t.mask {
		home := t.slots[j] & t.mask
		// The entry at j stays if its home lies cyclically in (i, j].
		if i <= j {
			if i < home && home <= j {
				continue
			}
		} else if i < home || home <= j {
			continue
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = 0
}
