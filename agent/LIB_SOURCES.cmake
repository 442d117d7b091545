# The agent's model pieces: the enrollment decision and the
# in-pod delivery routing. agent/CMakeLists.txt includes this file and adds
# ${ZMESH_AGENT_MODEL_SOURCES} to the agent library (or links zmesh_agent_model).
set(ZMESH_AGENT_MODEL_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/enrollment.cc
    ${CMAKE_CURRENT_LIST_DIR}/inpod_routing.cc)
if(NOT TARGET zmesh_agent_model)
  zmesh_cc_library(zmesh_agent_model
    SRCS ${ZMESH_AGENT_MODEL_SOURCES}
    DEPS zmesh_mesh zmesh_k8s zmesh_base)
endif()
