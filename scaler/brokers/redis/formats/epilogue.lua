local ok, res = pcall(count)
if ok then return {1, res[1], res[2], res[3], res[4], res[5] or {}} end
if type(res) == 'table' and res.kqs then return {0, res.kqs, res.a, res.b} end
error(res)
