# bpf_object(NAME SOURCE): compiles SOURCE (relative to the calling folder) for the BPF target against a
# vmlinux.h generated from the running kernel's BTF, generates a libbpf
# skeleton NAME.skel.h, and defines an INTERFACE target NAME_skel that puts the
# skeleton on the include path (in the manner of libbpf-bootstrap).

find_program(BPFTOOL bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)
find_program(BPF_CLANG clang REQUIRED)
set(NODEMESH_BTF_FILE /sys/kernel/btf/vmlinux CACHE FILEPATH
    "Kernel BTF from which vmlinux.h is generated")

set(_bpf_gen ${CMAKE_BINARY_DIR}/bpf-gen)
set(NODEMESH_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR})
file(MAKE_DIRECTORY ${_bpf_gen})


function(bpf_object name source)
  # vmlinux.h is generated in the directory of the first bpf_object() call
  # (custom command outputs are visible only in their own directory).
  get_property(have_vmlinux GLOBAL PROPERTY NODEMESH_VMLINUX_RULE)
  if(NOT have_vmlinux)
    set_property(GLOBAL PROPERTY NODEMESH_VMLINUX_RULE ON)
    add_custom_command(
      OUTPUT ${_bpf_gen}/vmlinux.h
      COMMAND ${CMAKE_COMMAND} -DBTF=${NODEMESH_BTF_FILE} -DBPFTOOL=${BPFTOOL}
              -DOUT=${_bpf_gen}/vmlinux.h -P ${NODEMESH_CMAKE_DIR}/GenVmlinux.cmake
      COMMENT "Generating vmlinux.h from ${NODEMESH_BTF_FILE}"
      VERBATIM)
  endif()
  get_filename_component(src ${source} ABSOLUTE)
  get_filename_component(src_dir ${src} DIRECTORY)
  set(obj ${_bpf_gen}/${name}.bpf.o)
  set(skel ${_bpf_gen}/${name}.skel.h)
  file(GLOB bpf_headers ${CMAKE_CURRENT_SOURCE_DIR}/*.h ${src_dir}/*.h
       ${NODEMESH_CMAKE_DIR}/../include/nodemesh/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -O2 -g -target bpf -D__TARGET_ARCH_x86
            -Wall -Wextra -Werror -Wno-unused-parameter
            -I${_bpf_gen} -I${NODEMESH_CMAKE_DIR}/../include -I${CMAKE_CURRENT_SOURCE_DIR}
            -I${src_dir} -c ${src} -o ${obj}
    DEPENDS ${src} ${bpf_headers} ${_bpf_gen}/vmlinux.h
    COMMENT "BPF ${source}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND sh -c "${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp && mv ${skel}.tmp ${skel}"
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${_bpf_gen})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
  set(${name}_BPF_OBJECT ${obj} PARENT_SCOPE)
endfunction()
