# serialisation sources are added here
list(APPEND SAE_SOURCES io/bytes.c io/container.c io/config_ser.c io/toy_ser.c io/model_ser.c
  io/trainer_ser.c io/json.c io/safetensors.c)
