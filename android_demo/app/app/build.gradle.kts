plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "dev.edgesdk.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "dev.edgesdk.demo"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_11
        targetCompatibility = JavaVersion.VERSION_11
    }
    kotlinOptions {
        jvmTarget = "11"
    }
    androidResources {
        // The model is read as bytes and checked against its manifest's sha256; keep it uncompressed.
        noCompress += "tflite"
    }
}

// Copy a model from `edge-sdk convert` into the assets:
//   ./gradlew :app:importModel -PedgeSdkModel=/path/to/out/int8.tflite
// It takes the .tflite and the manifest beside it (int8.tflite -> int8.json) as model.tflite / model.json.
tasks.register<Copy>("importModel") {
    val model = providers.gradleProperty("edgeSdkModel")
    doFirst {
        require(model.isPresent) { "pass -PedgeSdkModel=/path/to/model.tflite (written by edge-sdk convert)" }
    }
    from(model.map { file(it) }) { rename { "model.tflite" } }
    from(model.map { file(it.removeSuffix(".tflite") + ".json") }) { rename { "model.json" } }
    into("src/main/assets")
}

dependencies {
    implementation(project(":core"))
    // LiteRT's Android library, the same release as the ai-edge-litert wheel edge-sdk pins (2.3.0).
    implementation("com.google.ai.edge.litert:litert:2.3.0")
    implementation("androidx.appcompat:appcompat:1.7.0")
    implementation("androidx.lifecycle:lifecycle-runtime-ktx:2.8.7")
}
