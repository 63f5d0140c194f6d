// Package lru is a least-recently-used map bounded by the summed cost of its entries: the
// in-process caches of the identity and segments stages (a warm Lambda keeps what it read and
// wrote for the next events of the same people).
package lru

import "container/list"

// Cache is a least-recently-used map bounded by the summed cost of its entries. It is not safe
// for concurrent use: callers hold their own lock.
type Cache[K comparable, V any] struct {
	max, used int
	cost      func(K, V) int
	order     *list.List // front: most recent; values are *entry[K, V]
	byKey     map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key  K
	val  V
	cost int
}

// New returns a cache whose entries cost at most max in total (max <= 0: it keeps nothing).
func New[K comparable, V any](max int, cost func(K, V) int) *Cache[K, V] {
	return &Cache[K, V]{max: max, cost: cost, order: list.New(), byKey: map[K]*list.Element{}}
}

// Get returns an entry and makes it the most recently used.
func (l *Cache[K, V]) Get(k K) (V, bool) {
	el, ok := l.byKey[k]
	if !ok {
		var zero V
		return zero, false
	}
	l.order.MoveToFront(el)
	return el.Value.(*entry[K, V]).val, true
}

// Peek returns an entry without changing its recency.
func (l *Cache[K, V]) Peek(k K) (V, bool) {
	el, ok := l.byKey[k]
	if !ok {
		var zero V
		return zero, false
	}
	return el.Value.(*entry[K, V]).val, true
}

// Put adds or replaces an entry as the most recently used, evicting the least recently used
// ones over the bound; an entry that alone costs more than the bound is not kept.
func (l *Cache[K, V]) Put(k K, v V) {
	l.Remove(k)
	c := l.cost(k, v)
	if c > l.max {
		return
	}
	l.byKey[k] = l.order.PushFront(&entry[K, V]{key: k, val: v, cost: c})
	l.used += c
	for l.used > l.max {
		l.Remove(l.order.Back().Value.(*entry[K, V]).key)
	}
}

// Remove forgets an entry (none: nothing happens).
func (l *Cache[K, V]) Remove(k K) {
	if el, ok := l.byKey[k]; ok {
		l.used -= el.Value.(*entry[K, V]).cost
		l.order.Remove(el)
		delete(l.byKey, k)
	}
}

// Len is the number of entries.
func (l *Cache[K, V]) Len() int { return len(l.byKey) }

// Used is the summed cost of the entries.
func (l *Cache[K, V]) Used() int { return l.used }
