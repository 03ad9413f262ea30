" Highlighting for vmdesc (the VS Code TextMate grammar is the reference; this mirrors it).
if exists("b:current_syntax") | finish | endif

syn keyword vmdescInclude import
syn keyword vmdescStorage let machine extends
syn keyword vmdescKeyword cpus memory ram acpi cpuid hide pci_hole strategy ecam buses device pci boot cmdline initrd load entry mode bar
syn keyword vmdescConstant auto trap shadow pvh linux flat mem32 mem64 io prefetchable protected real on off true false
syn keyword vmdescUnit B KiB MiB GiB TiB
syn match vmdescNumber "\<0[xX][0-9A-Fa-f_]\+\>"
syn match vmdescNumber "\<0[bB][01_]\+\>"
syn match vmdescNumber "\<[0-9][0-9_]*\>"
syn match vmdescBdf "\<\([0-9A-Fa-f]\{4}:\)\=[0-9A-Fa-f]\{2}:[0-9A-Fa-f]\{2}\.[0-7]\>"
syn match vmdescOperator "\.\.\|<<\|>>\|[-+*/=]"
syn region vmdescString start=+"+ skip=+\\.+ end=+"+ oneline
syn keyword vmdescTodo TODO FIXME XXX contained
syn match vmdescComment "//.*$" contains=vmdescTodo
syn region vmdescComment start="/\*" end="\*/" contains=vmdescTodo

hi def link vmdescInclude Include
hi def link vmdescStorage StorageClass
hi def link vmdescKeyword Keyword
hi def link vmdescConstant Constant
hi def link vmdescUnit Type
hi def link vmdescNumber Number
hi def link vmdescBdf Number
hi def link vmdescOperator Operator
hi def link vmdescString String
hi def link vmdescComment Comment
hi def link vmdescTodo Todo

let b:current_syntax = "vmdesc"
