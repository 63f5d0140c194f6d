package lru

import "testing"

// The cache keeps the most recently used entries within its cost bound.
func TestBound(t *testing.T) {
	l := New[string, string](10, func(k, v string) int { return len(v) })
	l.Put("a", "xxxx")
	l.Put("b", "xxxx")
	l.Get("a")
	l.Put("c", "xxxx") // evicts b, the least recently used
	if _, ok := l.Get("b"); ok || l.Len() != 2 || l.Used() != 8 {
		t.Fatalf("after eviction: %d entries, %d used, b kept %v", l.Len(), l.Used(), ok)
	}
	l.Put("d", "xxxxxxxxxxxx") // over the bound alone: not kept
	if _, ok := l.Get("d"); ok {
		t.Fatal("an entry over the bound was kept")
	}
	if _, ok := l.Get("a"); !ok {
		t.Fatal("the most recently used entry was evicted")
	}
}

// Peek does not make an entry recent; Remove frees its cost; a bound of 0 keeps nothing.
func TestPeekRemoveAndDisabled(t *testing.T) {
	l := New[string, int](2, func(string, int) int { return 1 })
	l.Put("a", 1)
	l.Put("b", 2)
	if v, ok := l.Peek("a"); !ok || v != 1 {
		t.Fatalf("peek a: %v %v", v, ok)
	}
	l.Put("c", 3) // a is still the least recently used
	if _, ok := l.Peek("a"); ok {
		t.Fatal("peek made a recent")
	}
	l.Remove("b")
	if l.Len() != 1 || l.Used() != 1 {
		t.Fatalf("after remove: %d entries, %d used", l.Len(), l.Used())
	}
	off := New[string, int](0, func(string, int) int { return 1 })
	off.Put("a", 1)
	if off.Len() != 0 {
		t.Fatal("a cache bounded at 0 kept an entry")
	}
}
