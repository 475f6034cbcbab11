"""The shared state store: Redis, selected when ``SNAPCRAWL_REDIS_URL`` is set.

Several crawl workers sharing one Redis must agree on clusters, so :meth:`RedisStore.assign`
is one Lua script: the exact-hash check, the LSH bucket lookup, the similarity check against
each candidate's signature and the insert run atomically inside Redis (first writer wins;
a second worker that sees the same story a millisecond later finds the first one's entry).

Layout (every key under the prefix, default ``snapcrawl:state:``)::

    meta                 hash: schema, layout
    seq                  counter: insertion order (ties go to the earliest document)
    doc:<id>             hash: url, cluster, root, kind, hash, sig, seq
    hash:<sha256>        string: id of the first document with that content
    band:<bucket>        hash: 8-byte band key -> space-separated document ids
    page:<url>           hash: confirmed + pending URL state (see snapcrawl.dedup.store)
    pending:<run_id>     set: URLs with pending state of that run

Band keys are spread over 2^18 bucket hashes so each stays a compact listpack (tens of fields)
instead of one Redis key per band entry (42 keys per document). The scripts name keys they
build from the prefix, so this needs a single Redis server (not Redis Cluster).
"""

from __future__ import annotations

import struct
from typing import Any

import redis

from snapcrawl.dedup.minhash import Layout, to_bytes
from snapcrawl.dedup.store import EXACT, NEAR, Assignment, Doc, PageState, StateError, StateStore

SCHEMA_VERSION = "1"
BUCKET_BITS = 18
#: Documents kept per band key: a bucket this full holds boilerplate, not stories.
MAX_BUCKET = 1024

_ASSIGN = """
local p, id, url, h, sig = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local thr, nperm, maxb = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local dockey = p .. 'doc:' .. id
local function add_bands(collect)
  local found = {}
  for i = 9, #ARGV, 2 do
    local bkey, field = p .. 'band:' .. ARGV[i], ARGV[i + 1]
    local cur = redis.call('HGET', bkey, field)
    if cur then
      if collect then
        for m in string.gmatch(cur, '%S+') do found[m] = true end
      end
      if #cur < maxb * 21 then redis.call('HSET', bkey, field, cur .. ' ' .. id) end
    else
      redis.call('HSET', bkey, field, id)
    end
  end
  found[id] = nil
  return found
end
local old = redis.call('HMGET', dockey, 'cluster', 'root', 'kind', 'hash')
if old[1] then
  if old[4] ~= h then
    redis.call('SET', p .. 'hash:' .. h, id, 'NX')
    redis.call('HSET', dockey, 'hash', h)
    if sig ~= '' then
      redis.call('HSET', dockey, 'sig', sig)
      add_bands(false)
    end
  end
  return {old[1], old[2], old[3] or '', '', '1'}
end
local owner = redis.call('GET', p .. 'hash:' .. h)
if owner then
  local o = redis.call('HMGET', p .. 'doc:' .. owner, 'cluster', 'root')
  redis.call('HSET', dockey, 'url', url, 'cluster', o[1], 'root', o[2], 'kind', 'exact', 'hash', h,
             'seq', redis.call('INCR', p .. 'seq'))
  return {o[1], o[2], 'exact', '1', '0'}
end
redis.call('SET', p .. 'hash:' .. h, id)
local seq = redis.call('INCR', p .. 'seq')
redis.call('HSET', dockey, 'url', url, 'cluster', id, 'root', url, 'hash', h, 'seq', seq)
if sig == '' then return {id, url, '', '', '0'} end
redis.call('HSET', dockey, 'sig', sig)
local found = add_bands(true)
local bestsim, bestseq, bestc, bestr = -1, nil, nil, nil
for cand, _ in pairs(found) do
  local c = redis.call('HMGET', p .. 'doc:' .. cand, 'sig', 'cluster', 'root', 'seq')
  if c[1] and #c[1] == #sig then
    local eq = 0
    for k = 1, #sig, 4 do
      if string.sub(sig, k, k + 3) == string.sub(c[1], k, k + 3) then eq = eq + 1 end
    end
    local sim, cseq = eq / nperm, tonumber(c[4])
    if sim >= thr and (sim > bestsim or (sim == bestsim and cseq < bestseq)) then
      bestsim, bestseq, bestc, bestr = sim, cseq, c[2], c[3]
    end
  end
end
if bestc then
  redis.call('HSET', dockey, 'cluster', bestc, 'root', bestr, 'kind', 'near')
  return {bestc, bestr, 'near', tostring(bestsim), '0'}
end
return {id, url, '', '', '0'}
"""
# URL state: the pending fields of another (dead or finished) run are reset before writing.
_NOTE_FETCH = """
local key, run = KEYS[1], ARGV[1]
if redis.call('HGET', key, 'p_run') ~= run then
  redis.call('HDEL', key, 'p_kind', 'p_hash', 'p_revision')
end
redis.call('HSET', key, 'p_run', run, 'p_fetched', '1', 'p_etag', ARGV[2], 'p_last_modified', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
"""
_NOTE_ARTICLE = """
local key, run = KEYS[1], ARGV[1]
if redis.call('HGET', key, 'p_run') ~= run then
  redis.call('HDEL', key, 'p_fetched', 'p_etag', 'p_last_modified')
end
redis.call('HSET', key, 'p_run', run, 'p_kind', 'article', 'p_hash', ARGV[2], 'p_revision', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
"""
_CONFIRM = """
local p, run, n = ARGV[1], ARGV[2], 0
for i = 3, #ARGV do
  local key = p .. 'page:' .. ARGV[i]
  local s = redis.call('HMGET', key, 'p_run', 'p_kind', 'p_hash', 'p_revision', 'p_fetched',
                       'p_etag', 'p_last_modified')
  if s[1] == run then
    if s[2] then
      redis.call('HSET', key, 'kind', s[2], 'hash', s[3], 'revision', s[4])
    else
      redis.call('HSET', key, 'kind', 'page')
    end
    if s[5] then
      redis.call('HSET', key, 'etag', s[6] or '', 'last_modified', s[7] or '')
    end
    redis.call('HSET', key, 'run', run)
    redis.call('HDEL', key, 'p_run', 'p_kind', 'p_hash', 'p_revision', 'p_fetched', 'p_etag', 'p_last_modified')
    n = n + 1
  end
  redis.call('SREM', p .. 'pending:' .. run, ARGV[i])
end
return n
"""


def _text(value: Any) -> str | None:
    """A Redis reply as text; empty and missing values are None."""
    if value is None:
        return None
    text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
    return text or None


class RedisStore(StateStore):
    """State in Redis (see the module docstring for the key layout)."""

    def __init__(
        self,
        client: redis.Redis,
        run_id: str,
        layout: Layout | None = None,
        *,
        prefix: str = "snapcrawl:state:",
        where: str = "",
    ) -> None:
        super().__init__(run_id, layout or Layout())
        self.client = client
        self.prefix = prefix
        self.where = where or "server"
        self._assign = client.register_script(_ASSIGN)
        self._note_fetch = client.register_script(_NOTE_FETCH)
        self._note_article = client.register_script(_NOTE_ARTICLE)
        self._confirm = client.register_script(_CONFIRM)
        self._check_meta()

    @classmethod
    def from_url(
        cls, url: str, run_id: str, layout: Layout | None = None, *, prefix: str = "snapcrawl:state:"
    ) -> RedisStore:
        """Connect (and check the stored layout); a bad URL or unreachable server raises StateError."""
        where = _redacted(url)
        try:
            client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)
            return cls(client, run_id, layout, prefix=prefix, where=where)
        except (ValueError, redis.RedisError) as exc:
            raise StateError(f"SNAPCRAWL_REDIS_URL {where}: {exc}") from exc

    def describe(self) -> str:
        return f"Redis {self.where} (prefix {self.prefix})"

    def _check_meta(self) -> None:
        key = self.prefix + "meta"
        want = {"schema": SCHEMA_VERSION, "layout": self.layout.describe()}
        for field, value in want.items():
            self.client.hsetnx(key, field, value)
        have = {_text(k): _text(v) for k, v in self.client.hgetall(key).items()}
        for field, value in want.items():
            if have.get(field) != value:
                raise StateError(
                    f"Redis state under {self.prefix!r} was written with {field} {have.get(field)!r}, this snapcrawl "
                    f"uses {value!r}; use another prefix (SNAPCRAWL_REDIS_STATE_PREFIX) or clear the old keys"
                )

    # ------------------------------------------------------------------ dedup index

    def assign(self, doc: Doc, threshold: float) -> Assignment:
        args: list[Any] = [
            self.prefix,
            doc.id,
            doc.url,
            doc.content_hash,
            to_bytes(doc.signature) if doc.signature is not None else b"",
            repr(float(threshold)),
            self.layout.num_perm,
            MAX_BUCKET,
        ]
        if doc.signature is not None:
            mask = (1 << BUCKET_BITS) - 1
            for key in doc.bands:
                args += (key & mask, struct.pack("<q", key))
        cluster, root, kind, sim, known = (_text(v) for v in self._assign(args=args))
        assert cluster is not None
        return Assignment(
            cluster,
            root if kind else None,
            kind if kind in (EXACT, NEAR) else None,
            float(sim) if sim else None,
            known=known == "1",
        )

    # ------------------------------------------------------------------ URL state

    def _page_key(self, url: str) -> str:
        return f"{self.prefix}page:{url}"

    def page(self, url: str) -> PageState | None:
        fields = ("kind", "hash", "revision", "etag", "last_modified")
        kind, digest, revision, etag, modified = (_text(v) for v in self.client.hmget(self._page_key(url), fields))
        if kind is None:
            return None
        return PageState(kind, digest, int(revision or 0), etag, modified)

    def note_fetch(self, url: str, etag: str | None, last_modified: str | None) -> None:
        self._note_fetch(
            keys=[self._page_key(url), f"{self.prefix}pending:{self.run_id}"],
            args=[self.run_id, etag or "", last_modified or "", url],
        )

    def note_article(self, url: str, content_hash: str, revision: int) -> None:
        self._note_article(
            keys=[self._page_key(url), f"{self.prefix}pending:{self.run_id}"],
            args=[self.run_id, content_hash, revision, url],
        )

    def confirm(self) -> int:
        pending = f"{self.prefix}pending:{self.run_id}"
        total = 0
        while True:
            urls = [_text(u) or "" for u in self.client.srandmember(pending, 500) or []]
            if not urls:
                return total
            total += int(self._confirm(args=[self.prefix, self.run_id, *urls]))

    def close(self) -> None:
        self.client.close()


def _redacted(url: str) -> str:
    """The Redis URL without its password, for logs and errors."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return url
