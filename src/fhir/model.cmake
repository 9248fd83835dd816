# Owned by the model generator work: sources of the generated R4 model.
# The tables under generated/ come from tools/gen-model (do not edit them);
# tests/check-generated-model.sh checks that they are up to date.
set(BEVAN_FHIR_MODEL_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/model.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/generated/model_types.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/generated/model_constraints.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/generated/model_valuesets.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/generated/model_search.cpp)
set(BEVAN_FHIR_MODEL_TEST_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/model_test.cpp)
