# Owned by the model generator work: sources of the generated R4 model.
set(BEVAN_FHIR_MODEL_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/model.cpp)
set(BEVAN_FHIR_MODEL_TEST_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/model_test.cpp)
