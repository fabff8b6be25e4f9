# serialisation sources are added here
