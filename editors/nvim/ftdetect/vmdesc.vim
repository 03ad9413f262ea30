" .vmdesc files (also set by require("vmdesc").setup through vim.filetype.add).
autocmd BufRead,BufNewFile *.vmdesc setfiletype vmdesc
