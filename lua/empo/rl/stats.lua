-- empo.rl.stats — a clustered group's statistics: each answer's cluster
-- share, the semantic entropy, the largest cluster's share, cluster sizes
-- (one C call, core/include/empo/cluster.h). Clustering itself is empo.rl.cluster.
--
--     local st = rl.stats({ 1, 1, 2, 0 })        -- ids: 1-based clusters, 0 = empty answer
--     st.shares, st.entropy, st.max_share, st.n_clusters, st.n_empty, st.sizes, st.G
local ffi = require 'ffi'
local E = require 'empo.tensor.ffi'
local C = E.C

local M = {}

local type, error, tostring = type, error, tostring

local EMPTY_MODES = { singleton = C.EMPO_EMPTY_SINGLETON, cluster = C.EMPO_EMPTY_CLUSTER, drop = C.EMPO_EMPTY_DROP }
M.EMPTY_MODES = { 'singleton', 'cluster', 'drop' }

local cap, ids_buf, share_buf = 0, nil, nil
local stats_buf = ffi.new('empo_group_stats[1]')

-- Shares and semantic entropy of a clustering. ids: 1-based cluster ids,
-- 0 for an empty answer. opts.empty: how empty answers count —
--   'singleton' (default, the reference): each is a cluster of its own;
--   'cluster': together they are one cluster;
--   'drop': they are left out (shares over the other answers).
-- Returns { shares = {p of each answer's cluster}, entropy (natural log),
-- max_share (largest non-empty cluster), n_clusters (non-empty), n_empty,
-- sizes = {size of cluster c}, largest (the id of the largest cluster,
-- the first on a tie; 0 when every answer is empty), G }.
function M.stats(ids, opts)
  if type(ids) ~= 'table' then error('empo.rl.stats: ids must be a table of cluster ids, got ' .. type(ids), 2) end
  local mode_name = opts and opts.empty or 'singleton'
  local mode = EMPTY_MODES[mode_name]
  if not mode then
    error("empo.rl.stats: empty must be 'singleton', 'cluster' or 'drop', got " .. tostring(mode_name), 2)
  end
  local n = #ids
  if n > cap then
    cap = math.max(n, 64)
    ids_buf, share_buf = ffi.new('int32_t[?]', cap), ffi.new('double[?]', cap)
  end
  local sizes = {}
  for i = 1, n do
    local id = ids[i]
    if type(id) ~= 'number' or id < 0 or id > n or id % 1 ~= 0 then
      error(string.format('empo.rl.stats: ids[%d] = %s is not a cluster id in 0..%d', i, tostring(id), n), 2)
    end
    ids_buf[i - 1] = id - 1
    if id > 0 then sizes[id] = (sizes[id] or 0) + 1 end
  end
  E.check(C.empo_cluster_stats(n, ids_buf, mode, share_buf, stats_buf), 2)
  local shares = {}
  for i = 1, n do shares[i] = share_buf[i - 1] end
  local largest = 0
  for c = 1, #sizes do
    sizes[c] = sizes[c] or 0
    if sizes[c] > (sizes[largest] or 0) then largest = c end
  end
  local st = stats_buf[0]
  return { shares = shares, entropy = st.entropy, max_share = st.max_share, n_clusters = st.n_clusters,
           n_empty = st.n_empty, sizes = sizes, largest = largest, G = n }
end

return M
