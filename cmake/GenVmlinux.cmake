# Generates vmlinux.h from kernel BTF, with a clear error where there is none.
if(NOT EXISTS ${BTF})
  message(FATAL_ERROR
    "${BTF} does not exist: this kernel was built without BTF "
    "(CONFIG_DEBUG_INFO_BTF=y is required for CO-RE BPF programs)")
endif()
execute_process(COMMAND ${BPFTOOL} btf dump file ${BTF} format c
                OUTPUT_FILE ${OUT}.tmp RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "bpftool btf dump of ${BTF} failed (${rc})")
endif()
file(RENAME ${OUT}.tmp ${OUT})
